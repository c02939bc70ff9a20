"""The reaper: no accepted job is ever lost, none stays stuck, none outlives its deadline."""

from __future__ import annotations

import logging

from steadyvoice.jobs.dispatch import Dispatcher
from steadyvoice.jobs.liveness import WorkerRegistry
from steadyvoice.jobs.store import JobStore, ReapReport
from steadyvoice.observability import metrics
from steadyvoice.observability.logs import event
from steadyvoice.periodic import Periodic
from steadyvoice.settings import JobSettings

log = logging.getLogger("steadyvoice.reaper")


class Reaper:
    """Periodically requeues expired leases, times out overdue jobs and re-rings the queue."""

    def __init__(self, store: JobStore, dispatcher: Dispatcher, settings: JobSettings) -> None:
        self._store = store
        self._dispatcher = dispatcher
        self._settings = settings
        self._rounds = Periodic("reaper", settings.reaper_interval_seconds, self.run_once, log)

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

    def start(self) -> None:
        self._rounds.start()

    def stop(self) -> None:
        self._rounds.stop()
