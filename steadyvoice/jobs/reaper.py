"""The reaper: no accepted job is ever lost, none stays stuck, none outlives its deadline."""

from __future__ import annotations

import logging
import threading

from steadyvoice.jobs.dispatch import Dispatcher
from steadyvoice.jobs.liveness import WorkerRegistry
from steadyvoice.jobs.store import JobStore, ReapReport
from steadyvoice.observability import metrics
from steadyvoice.observability.logs import event
from steadyvoice.settings import JobSettings

log = logging.getLogger("steadyvoice.reaper")


class Reaper:
    """Periodically requeues expired leases, times out overdue jobs and re-rings the queue."""

    def __init__(self, store: JobStore, dispatcher: Dispatcher, settings: JobSettings) -> None:
        self._store = store
        self._dispatcher = dispatcher
        self._settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> ReapReport:
        report = self._store.reap(self._settings.max_attempts)
        for job_id in report.requeued:
            event(log, "job.requeued", job_id=job_id, reason="lease_expired")
        for job_id in report.lost:
            event(log, "job.failed", job_id=job_id, error_code="worker_lost")
        for job_id in report.timed_out:
            event(log, "job.failed", job_id=job_id, error_code="timeout")
        metrics.observe_finished_ids(self._store, [*report.lost, *report.timed_out])
        if self._store.has_queued():
            self._dispatcher.notify("*")
        WorkerRegistry(self._store).prune(self._settings.worker_ready_seconds * 20)
        return report

    def _loop(self) -> None:
        while not self._stop.wait(self._settings.reaper_interval_seconds):
            try:
                self.run_once()
            except Exception:
                log.exception("reaper pass failed")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="reaper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
