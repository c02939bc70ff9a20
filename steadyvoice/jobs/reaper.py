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
        else:  # nothing queued, so nothing unsent (the Celery outbox sets it otherwise)
            metrics.set_dispatch_unpublished(0)
        WorkerRegistry(self._store).prune(self._settings.worker_ready_seconds * 20)
        return report

    def start(self) -> None:
        self._rounds.start()

    def stop(self) -> None:
        self._rounds.stop()


def release_gone_workers(store: JobStore, max_attempts: int) -> ReapReport:
    """At ``serve`` start: requeue the jobs of this host's workers that are proven gone.

    After a power cut (the whole process group SIGKILLed) the dead workers' jobs would wait for
    their leases. A worker row that names this host and a process that is provably not running
    any more (``WorkerRegistry.gone_here``) cannot write again, so its jobs go back to the queue
    now and its row is removed. Workers that may be alive (another host, another live ``serve``
    on this host, no proof) keep their leases: fencing stays the guarantee.
    """
    registry = WorkerRegistry(store)
    total = ReapReport()
    for worker in registry.gone_here():
        # Row first: a new process that reused the pid has re-registered under a new key.
        # (It claims nothing before its engine is loaded, long after the release below.)
        if not registry.forget(worker):
            continue
        report = store.release_worker(worker.id, max_attempts)
        for job_id in report.requeued:
            event(log, "job.requeued", job_id=job_id, reason="worker_gone", worker_id=worker.id)
        for job_id in report.lost:
            event(log, "job.failed", job_id=job_id, error_code="worker_lost", worker_id=worker.id)
        metrics.observe_finished_ids(store, report.lost)
        total.requeued += report.requeued
        total.lost += report.lost
    return total
