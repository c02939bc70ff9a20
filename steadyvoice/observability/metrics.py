"""Prometheus metrics (docs/metrics.md is the contract): the metric objects and small hooks.

Each job's final state is observed in exactly one process: the runner (succeeded, or failed by
the engine), the reaper and the supervisor (timeout, worker_lost) and the cancel route
(canceled). Under ``steadyvoice serve`` every process writes to ``PROMETHEUS_MULTIPROC_DIR``
(set by the CLI before this module is imported), so one scrape of the API sees them all.
"""

from __future__ import annotations

import functools
import logging
import os
import resource
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ParamSpec

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from steadyvoice.jobs.models import Job
from steadyvoice.jobs.store import JobStore
from steadyvoice.observability.outcomes import CLIENT_ERROR_CODES, outcome_of, size_of
from steadyvoice.settings import SloSettings

log = logging.getLogger("steadyvoice.metrics")

P = ParamSpec("P")
_failed_hooks: set[str] = set()


def _safe(hook: Callable[P, None]) -> Callable[P, None]:
    """Metrics never fail a job or a request: log a hook's first failure, swallow every one."""

    @functools.wraps(hook)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            hook(*args, **kwargs)
        except Exception:
            if hook.__name__ not in _failed_hooks:
                _failed_hooks.add(hook.__name__)
                log.exception("metrics hook %s failed (further failures not logged)", hook.__name__)

    return wrapper


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Process-local registry (single-process mode). In multiprocess mode the values live in files
# and ``/metrics`` reads them with a MultiProcessCollector instead.
REGISTRY = CollectorRegistry(auto_describe=True)

# Seconds: fine below 1 s for HTTP, a ladder up to the longest job deadlines. The SLO latency
# target is always added exactly (see ``buckets_for``).
BASE_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.0,
    2.5,
    3.0,
    4.0,
    5.0,
    7.5,
    10.0,
    15.0,
    20.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
)
RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0, 10.0)

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
WORKER_STATES = ("loading", "standby", "ready", "busy", "stopping")

HTTP_REQUESTS = Counter(
    "steadyvoice_http_requests",
    "Requests answered, by route template (never the raw path).",
    ["route", "method", "status"],
    registry=REGISTRY,
)
JOBS_FINISHED = Counter(
    "steadyvoice_jobs_finished",
    "Jobs that reached a final state.",
    ["status", "error_code", "outcome"],
    registry=REGISTRY,
)
# Failure codes of our own making (``bad``) that a job can end with.
SERVER_ERROR_CODES = ("timeout", "worker_lost", "engine_error", "engine_unavailable")
REFUSAL_REASONS = ("deadline", "latency", "queue_full")
JOBS_REFUSED = Counter(
    "steadyvoice_jobs_refused",
    "Submissions refused by admission control (503).",
    ["reason"],
    registry=REGISTRY,
)
AUDIT_WRITE_FAILURES = Counter(
    "steadyvoice_audit_write_failures",
    "Audit log rows that could not be written (the call itself was answered).",
    registry=REGISTRY,
)
AUTH_REFUSALS = Counter(
    "steadyvoice_auth_refusals",
    "Calls refused by authentication, role or per-key limits, by error code.",
    ["code"],
    registry=REGISTRY,
)
WORKER_RESTARTS = Counter(
    "steadyvoice_worker_restarts",
    "Worker processes restarted by the supervisor.",
    registry=REGISTRY,
)
# Why a worker was retired to be replaced by a fresh process (``worker.max_*``).
RECYCLE_REASONS = ("max_jobs", "max_memory", "max_device_memory", "max_age")
WORKER_RECYCLES = Counter(
    "steadyvoice_worker_recycles",
    "Worker processes retired by a limit (worker.max_*), to be replaced by a fresh one.",
    ["reason"],
    registry=REGISTRY,
)
RECOVERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0)
RESTART_KINDS = ("immediate", "backoff")
WORKER_RECOVERY = Histogram(
    "steadyvoice_worker_recovery_seconds",
    "From a local worker's death (the supervisor saw it exit) to its replacement being ready.",
    ["restart"],
    buckets=RECOVERY_BUCKETS,
    registry=REGISTRY,
)
LANE_FINISHED = Counter(
    "steadyvoice_lane_jobs_finished",
    "Jobs that reached a final state, by scheduling lane (interactive, batch) and status.",
    ["lane", "status"],
    registry=REGISTRY,
)
WEBHOOK_OUTCOMES = ("delivered", "retry", "failed")
WEBHOOK_ATTEMPTS = Counter(
    "steadyvoice_webhook_attempts",
    "Callback delivery attempts, by what followed: delivered, retry (will be), failed (gave up).",
    ["outcome"],
    registry=REGISTRY,
)
FIRST_AUDIO_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 120.0)
SPEECH_FIRST_AUDIO = Histogram(
    "steadyvoice_speech_first_audio_seconds",
    "POST /v1/audio/speech: from the request to the first audio byte sent.",
    ["streamed"],
    buckets=FIRST_AUDIO_BUCKETS,
    registry=REGISTRY,
)
DISPATCH_PUBLISH_FAILURES = Counter(
    "steadyvoice_dispatch_publish_failures",
    "Celery dispatch: job messages the broker did not take (left to the reaper to send).",
    registry=REGISTRY,
)
DISPATCH_REPUBLISHED = Counter(
    "steadyvoice_dispatch_republished",
    "Celery dispatch: job messages sent again because the broker had lost them.",
    registry=REGISTRY,
)
DISPATCH_UNPUBLISHED = Gauge(
    "steadyvoice_dispatch_unpublished",
    "Celery dispatch: queued jobs whose message is not on the broker yet (reaper's last pass).",
    registry=REGISTRY,
    multiprocess_mode="livemax",
)
# Series are labelled ``component`` and ``pid`` either way: in multiprocess mode the collector
# adds ``pid`` itself (``liveall``), and a dead worker's file is removed by the supervisor
# (``process_exited``), so only live processes are shown.
_SHARED = os.environ.get(MULTIPROC_ENV) is not None
PROCESS_MEMORY = Gauge(
    "steadyvoice_process_resident_memory_bytes",
    "Resident memory of each live process.",
    ["component"] if _SHARED else ["component", "pid"],
    registry=REGISTRY,
    multiprocess_mode="liveall",
)


def buckets_for(slo: SloSettings) -> tuple[float, ...]:
    """The latency ladder with the SLO latency target included exactly."""
    return tuple(sorted({*BASE_BUCKETS, float(slo.latency_target_seconds)}))


@dataclass(frozen=True)
class _Histograms:
    buckets: tuple[float, ...]
    http_duration: Histogram
    queue_wait: Histogram
    lane_queue_wait: Histogram
    synthesis: Histogram
    end_to_end: Histogram
    real_time_factor: Histogram

    def unregister(self) -> None:
        for h in (
            self.http_duration,
            self.queue_wait,
            self.lane_queue_wait,
            self.synthesis,
            self.end_to_end,
            self.real_time_factor,
        ):
            REGISTRY.unregister(h)


def _build_histograms(buckets: tuple[float, ...]) -> _Histograms:
    return _Histograms(
        buckets=buckets,
        http_duration=Histogram(
            "steadyvoice_http_request_duration_seconds",
            "Time to answer.",
            ["route", "method"],
            buckets=buckets,
            registry=REGISTRY,
        ),
        queue_wait=Histogram(
            "steadyvoice_job_queue_wait_seconds",
            "From accepted to first claimed.",
            buckets=buckets,
            registry=REGISTRY,
        ),
        lane_queue_wait=Histogram(
            "steadyvoice_job_lane_queue_wait_seconds",
            "From accepted to first claimed, by scheduling lane.",
            ["lane"],
            buckets=buckets,
            registry=REGISTRY,
        ),
        synthesis=Histogram(
            "steadyvoice_job_synthesis_seconds",
            "Engine time of the successful attempt.",
            buckets=buckets,
            registry=REGISTRY,
        ),
        end_to_end=Histogram(
            "steadyvoice_job_end_to_end_seconds",
            "From accepted to audio durable.",
            ["size"],
            buckets=buckets,
            registry=REGISTRY,
        ),
        real_time_factor=Histogram(
            "steadyvoice_job_real_time_factor",
            "Synthesis seconds per second of audio.",
            buckets=RTF_BUCKETS,
            registry=REGISTRY,
        ),
    )


_lock = threading.Lock()
_histograms = _build_histograms(buckets_for(SloSettings()))
_slo = SloSettings()


@_safe
def configure(slo: SloSettings) -> None:
    """Use this process's SLO settings: histogram buckets and the short/long size rule.

    Called once per process at start (API app, worker). Every process of one service gets the
    same settings, so their multiprocess files agree on the buckets.
    """
    global _histograms, _slo
    with _lock:
        _slo = slo
        wanted = buckets_for(slo)
        if wanted != _histograms.buckets:
            _histograms.unregister()
            _histograms = _build_histograms(wanted)


def multiprocess_dir() -> str | None:
    """The shared metrics directory when this process runs in multiprocess mode."""
    return os.environ.get(MULTIPROC_ENV) or None


def method_label(method: str) -> str:
    """The request method, or ``other`` for anything unusual (bounded label values)."""
    return method if method in KNOWN_METHODS else "other"


@_safe
def precreate_series() -> None:
    """Create the job counters' usual label sets at 0, so ``rate()`` sees their first event.

    Idempotent. In multiprocess mode this adds a 0-valued child to this process's file: the
    sum over processes is unchanged.
    """
    JOBS_FINISHED.labels(status="succeeded", error_code="", outcome="good")
    JOBS_FINISHED.labels(status="canceled", error_code="", outcome="canceled")
    for code in SERVER_ERROR_CODES:
        JOBS_FINISHED.labels(status="failed", error_code=code, outcome="bad")
    for code in sorted(CLIENT_ERROR_CODES):
        JOBS_FINISHED.labels(status="failed", error_code=code, outcome="client_error")
    for reason in REFUSAL_REASONS:
        JOBS_REFUSED.labels(reason=reason)
    for kind in RESTART_KINDS:
        WORKER_RECOVERY.labels(restart=kind)
    for reason in RECYCLE_REASONS:
        WORKER_RECYCLES.labels(reason=reason)
    for lane in ("interactive", "batch"):
        for status in ("succeeded", "failed", "canceled"):
            LANE_FINISHED.labels(lane=lane, status=status)
    for webhook in WEBHOOK_OUTCOMES:
        WEBHOOK_ATTEMPTS.labels(outcome=webhook)


@_safe
def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """One HTTP request answered (``route`` is the matched template, or ``unmatched``)."""
    method = method_label(method)
    HTTP_REQUESTS.labels(route=route, method=method, status=str(status)).inc()
    _histograms.http_duration.labels(route=route, method=method).observe(seconds)


@_safe
def observe_claimed(job: Job, attempt: int) -> None:
    """A job was claimed; its first claim ends its queue wait."""
    if attempt == 1 and job.started_at is not None:
        wait = max(0.0, (job.started_at - job.created_at).total_seconds())
        _histograms.queue_wait.observe(wait)
        _histograms.lane_queue_wait.labels(lane=job.lane or "interactive").observe(wait)


@_safe
def observe_finished(
    job: Job, slo: SloSettings | None = None, synthesis_seconds: float | None = None
) -> None:
    """A job reached its final state (call once, in the process that moved it there)."""
    slo = slo or _slo
    outcome = outcome_of(job.status, job.error_code, job.finished_at, job.deadline_at)
    JOBS_FINISHED.labels(status=job.status, error_code=job.error_code or "", outcome=outcome).inc()
    LANE_FINISHED.labels(lane=job.lane or "interactive", status=job.status).inc()
    if job.status != "succeeded":
        return
    if job.finished_at is not None:
        e2e = max(0.0, (job.finished_at - job.created_at).total_seconds())
        size = size_of(len(job.text), slo.latency_max_chars)
        _histograms.end_to_end.labels(size=size).observe(e2e)
    if synthesis_seconds is not None:
        _histograms.synthesis.observe(synthesis_seconds)
        if job.duration_seconds:
            _histograms.real_time_factor.observe(synthesis_seconds / job.duration_seconds)


@_safe
def observe_first_audio(seconds: float, *, streamed: bool) -> None:
    """A speech call sent its first audio byte (a stream) or started sending its file."""
    SPEECH_FIRST_AUDIO.labels(streamed="true" if streamed else "false").observe(max(0.0, seconds))


@_safe
def observe_refused(reason: str) -> None:
    """A submission refused by admission control (``deadline``, ``latency`` or ``queue_full``)."""
    JOBS_REFUSED.labels(reason=reason).inc()


@_safe
def observe_webhook(outcome: str) -> None:
    """A callback attempt was made (``outcome``: delivered, retry or failed)."""
    WEBHOOK_ATTEMPTS.labels(outcome=outcome).inc()


@_safe
def observe_audit_failure() -> None:
    """An audit row could not be written."""
    AUDIT_WRITE_FAILURES.inc()


@_safe
def observe_auth_refusal(code: str) -> None:
    """A call refused with 401, 403 or 429 (``code`` is the stable error code)."""
    AUTH_REFUSALS.labels(code=code).inc()


@_safe
def count_worker_restart() -> None:
    """The supervisor started a worker again after one exited."""
    WORKER_RESTARTS.inc()


@_safe
def count_worker_recycle(reason: str) -> None:
    """A worker is retiring past a limit (``RECYCLE_REASONS``); a fresh process replaces it."""
    WORKER_RECYCLES.labels(reason=reason).inc()


@_safe
def count_dispatch_publish_failure() -> None:
    """A job message could not be handed to the broker."""
    DISPATCH_PUBLISH_FAILURES.inc()


@_safe
def count_dispatch_republished() -> None:
    """A job message the broker lost was sent again."""
    DISPATCH_REPUBLISHED.inc()


@_safe
def set_dispatch_unpublished(count: int) -> None:
    """Queued jobs not on the broker after the reaper's pass (the broker is away if it grows)."""
    DISPATCH_UNPUBLISHED.set(count)


@_safe
def observe_worker_recovery(seconds: float, restart: str) -> None:
    """A dead worker's replacement is ready (``restart``: ``immediate`` or ``backoff``)."""
    WORKER_RECOVERY.labels(restart=restart).observe(max(0.0, seconds))


def resident_memory_bytes() -> int:
    """This process's resident set size now (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@_safe
def set_process_memory(component: str) -> None:
    """Publish this process's resident memory under ``component`` (``api`` or ``worker``)."""
    labels = {"component": component}
    if not _SHARED:
        labels["pid"] = str(os.getpid())
    PROCESS_MEMORY.labels(**labels).set(resident_memory_bytes())


@_safe
def process_exited(pid: int) -> None:
    """A reaped process: drop its live gauges and fold its counts into the archive files
    (multiprocess mode only; ``metric_files.compact``), so the dir does not grow per worker."""
    path = multiprocess_dir()
    if path is None:
        return
    from steadyvoice.observability import metric_files

    metric_files.compact(path, [pid])


@_safe
def observe_finished_ids(store: JobStore, job_ids: Iterable[str]) -> None:
    """``observe_finished`` for jobs moved to a final state by id (reaper, supervisor)."""
    for job_id in job_ids:
        try:
            observe_finished(store.get(job_id))
        except Exception:
            log.exception("could not observe finished job %s", job_id)
