"""A worker whose jobs come from Celery messages instead of from polling the store.

It is the standalone :class:`~steadyvoice.jobs.worker.Worker` (liveness row, heartbeats that
renew the job's lease, the same runner) with the claim loop taken out: Celery delivers a job
id, and ``take`` claims that job through the store's fenced claim. A message for a job that is
no longer queued (another delivery took it, it finished, it was canceled, it is past its
deadline) is acknowledged and dropped, with a log line: the job row, not the broker, says
what runs.
"""

from __future__ import annotations

import dataclasses
import logging
import resource
import threading

from steadyvoice.jobs import liveness
from steadyvoice.jobs.backoff import STORE_ERRORS
from steadyvoice.jobs.reaper import release_gone_workers
from steadyvoice.jobs.store import Claim
from steadyvoice.jobs.worker import Worker, _guarded, _store_unavailable
from steadyvoice.observability import metrics
from steadyvoice.observability.logs import event

log = logging.getLogger("steadyvoice.worker")

MB = 1024 * 1024
KIB = 1024


class MemoryLimitBelowEngine(Exception):
    """``worker.max_memory_mb`` is below the peak memory of loading the engine: Celery would
    retire the child after every task."""


def peak_memory_bytes() -> int:
    """This process's peak resident set (``ru_maxrss``, KiB on Linux): what Celery's
    ``worker_max_memory_per_child`` (billiard) compares with its limit after each task."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * KIB


class CeleryWorker(Worker):
    """One resident engine in a Celery pool child: ``open``, then ``take`` per message."""

    def open(self, queues: list[str], recycles: int) -> None:
        """Register (with the queues it consumes, for the fleet view, and its slot's
        ``recycles`` so far), start the heartbeats and load the engine (once per child)."""
        self.card = dataclasses.replace(self.card, queues=tuple(queues), recycles=recycles)
        if not self._register():
            return
        self._release_gone()
        threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True).start()
        self._engine.load()
        self._check_peak_fits()
        self._state.status = liveness.READY
        _guarded("beat", self._beat)
        metrics.set_process_memory("worker")
        event(log, "worker.ready", worker_id=self._id, engine=self._engine.name)

    tasks = 0  # messages handled, run or dropped: what Celery's max_tasks_per_child counts

    def take(self, job_id: str) -> bool:
        """Claim and run the job a message names; False when it was dropped instead."""
        self.tasks += 1
        try:
            claim = self._store.claim_job(job_id, self._id, self._settings.jobs.lease_seconds)
            if claim is None:
                status = self._store.get(job_id).status
                event(log, "job.message_dropped", job_id=job_id, status=status, worker_id=self._id)
                return False
            self._run(claim)
            return True
        finally:
            self._note_recycle()

    def _run(self, claim: Claim) -> None:
        try:
            super()._run(claim)
        finally:
            # Back to waiting for a message, for as long as the queue stays empty: no stall.
            self._progress.waiting()

    def _release_gone(self) -> None:
        """A child SIGKILLed mid-job left its job running under its lease, and its message,
        redelivered, would be dropped until the lease ran out. Its row names this host and a
        process that is provably gone: its jobs go back to the queue now (and out again)."""
        try:
            release_gone_workers(self._store, self._settings.jobs.max_attempts)
        except STORE_ERRORS as exc:  # the leases still hand the jobs back, later
            _store_unavailable("release", exc)

    def _check_peak_fits(self) -> None:
        limit = self._settings.worker.max_memory_mb
        peak = peak_memory_bytes()
        if limit and peak >= limit * MB:
            raise MemoryLimitBelowEngine(
                f"worker.max_memory_mb={limit} is below the {peak // MB} MB peak of loading "
                f"the {self._engine.name} engine: Celery (which compares the peak, ru_maxrss) "
                "would recycle the worker after every job. Raise the limit above that peak."
            )

    def _note_recycle(self) -> None:
        """Count and log the recycle Celery is about to do (``worker_max_tasks_per_child``,
        ``worker_max_memory_per_child``): it retires this child after the task, silently.
        Memory is the peak, as Celery measures it, so both agree on every recycle."""
        limits = self._settings.worker
        reason = None
        if limits.max_jobs and self.tasks >= limits.max_jobs:
            reason = "max_jobs"
        elif limits.max_memory_mb and peak_memory_bytes() > limits.max_memory_mb * MB:
            reason = "max_memory"
        if reason is not None:
            self._state.recycled = reason
            metrics.count_worker_recycle(reason)
            event(
                log,
                "worker.recycling",
                worker_id=self._id,
                reason=reason,
                jobs_done=self._state.jobs_done,
            )

    def close(self) -> None:
        """Stop the heartbeats and remove the liveness row (the child is exiting)."""
        self._state.status = liveness.STOPPING
        self._state.stop.set()
        self._state.exited.set()
        self._unregister()
        event(log, "worker.stopped", worker_id=self._id, jobs_done=self._state.jobs_done)
