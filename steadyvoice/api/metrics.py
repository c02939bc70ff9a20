"""``GET /metrics``: Prometheus text format, plus gauges read from the store and disk at scrape."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from steadyvoice.api.deps import Services, get_services
from steadyvoice.api.health import readiness
from steadyvoice.jobs.admission import lane_counts
from steadyvoice.jobs.lanes import LANES
from steadyvoice.jobs.states import JobStatus
from steadyvoice.observability import metrics
from steadyvoice.observability.metric_files import SharedFilesCollector
from steadyvoice.periodic import Periodic

log = logging.getLogger("steadyvoice.metrics")
router = APIRouter(tags=["metrics"])

# The outputs tree is walked by a background thread, at most this often (a walk of a large tree
# can take long; a scrape never waits for one once a first value exists).
OUTPUTS_SCAN_SECONDS = 60.0
# How long the very first scrape waits for the first walk; after that the output gauges are left
# out of that scrape (absent, not a misleading 0) until the walk finishes.
OUTPUTS_FIRST_WAIT_SECONDS = 5.0


@router.get("/metrics", include_in_schema=False)
def metrics_endpoint(request: Request) -> Response:
    """Every metric in docs/metrics.md, from this process and (under ``serve``) its workers,
    but those that serve their own port (``worker.metrics_port``; observability.slot_metrics)."""
    services = get_services(request)
    state = request.app.state
    collector: StoreCollector | None = getattr(state, "metrics_collector", None)
    if collector is None:
        collector = state.metrics_collector = StoreCollector(services)
    metrics.set_process_memory("api")
    registry = CollectorRegistry()
    path = metrics.multiprocess_dir()
    if path is not None:
        registry.register(SharedFilesCollector(path))
    else:
        registry.register(_Forward(metrics.REGISTRY))
    registry.register(collector)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def close(app: FastAPI) -> None:
    """Stop the app's background outputs scan, if a scrape started one."""
    collector: StoreCollector | None = getattr(app.state, "metrics_collector", None)
    if collector is not None:
        collector.close()


class _Forward(Collector):
    """This process's own metric objects (single-process mode)."""

    def __init__(self, source: CollectorRegistry) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        yield from self._source.collect()


class _OutputTotals:
    """Files and bytes under the outputs dir, walked by a daemon thread started on first use."""

    def __init__(self, root: Path, interval: float | None = None) -> None:
        self._root = root
        every = OUTPUTS_SCAN_SECONDS if interval is None else interval
        self._lock = threading.Lock()
        self._value: tuple[int, int] | None = None
        self._at = 0.0
        self._first = threading.Event()
        self._rounds = Periodic("outputs-scan", every, self._scan, log, at_once=True)

    def get(self) -> tuple[int, int, float] | None:
        """``(files, bytes, age of the walk in seconds)``, or None before the first walk ends."""
        with self._lock:
            first = not self._rounds.started
            if first:
                self._rounds.start()
        if first:  # only the scrape that started the walk waits for it, and briefly
            self._first.wait(OUTPUTS_FIRST_WAIT_SECONDS)
        with self._lock:
            if self._value is None:
                return None
            return (*self._value, time.monotonic() - self._at)

    def close(self) -> None:
        self._rounds.stop(timeout=None)

    def _scan(self) -> None:
        value = _walk(self._root)  # on failure the last value stays; the next round retries
        with self._lock:
            self._value, self._at = value, time.monotonic()
        self._first.set()


def _walk(root: Path) -> tuple[int, int]:
    files = size = 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            try:
                size += os.stat(os.path.join(folder, name)).st_size
            except OSError:  # removed while we walked
                continue
            files += 1
    return files, size


class StoreCollector(Collector):
    """Gauges read at scrape time: queue depth, workers, readiness, outputs and free disk."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._outputs = _OutputTotals(services.settings.outputs_dir)

    def collect(self) -> Iterator[Metric]:
        yield from self._queue()
        yield from self._workers()
        ready = readiness(self._services)
        yield _gauge(
            "steadyvoice_ready", "1 while /readyz would answer 200.", 0 if ready.reasons else 1
        )
        yield from self._output_totals()
        yield _gauge(
            "steadyvoice_disk_free_bytes",
            "Free space on the data dir's disk.",
            self._services.storage.free_bytes(),
        )

    def close(self) -> None:
        self._outputs.close()

    def _output_totals(self) -> Iterator[Metric]:
        totals = self._outputs.get()
        if totals is None:  # the first walk is still running
            return
        files, size, age = totals
        yield _gauge("steadyvoice_output_files", "Files under data/outputs/.", files)
        yield _gauge("steadyvoice_output_bytes", "Bytes under data/outputs/.", size)
        yield _gauge(
            "steadyvoice_output_scan_age_seconds",
            "Age of the outputs walk behind the two gauges above.",
            age,
        )

    def _queue(self) -> Iterator[Metric]:
        try:
            counts = self._services.store.count_by_status()
        except Exception:  # noqa: BLE001 - store down: no value, readiness says why
            return
        yield _gauge(
            "steadyvoice_queue_depth", "Jobs queued now.", counts.get(JobStatus.QUEUED.value, 0)
        )
        yield from self._lanes()

    def _lanes(self) -> Iterator[Metric]:
        try:
            counts = lane_counts(self._services.store)
        except Exception:  # noqa: BLE001 - store down: no value, readiness says why
            return
        depth = GaugeMetricFamily(
            "steadyvoice_lane_queue_depth", "Jobs queued now, by lane.", labels=["lane"]
        )
        running = GaugeMetricFamily(
            "steadyvoice_lane_running_jobs", "Jobs running now, by lane.", labels=["lane"]
        )
        for lane in LANES:
            depth.add_metric([lane], counts.get((JobStatus.QUEUED.value, lane), 0))
            running.add_metric([lane], counts.get((JobStatus.RUNNING.value, lane), 0))
        yield depth
        yield running

    def _workers(self) -> Iterator[Metric]:
        services = self._services
        try:
            live = services.workers.live(services.settings.jobs.worker_ready_seconds)
        except Exception:  # noqa: BLE001 - store down: no value
            return
        family = GaugeMetricFamily(
            "steadyvoice_workers", "Live workers by state (from heartbeats).", labels=["state"]
        )
        for state in metrics.WORKER_STATES:
            family.add_metric([state], sum(1 for w in live if w.state == state))
        yield family


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
