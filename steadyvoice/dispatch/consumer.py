"""A worker whose jobs come from Celery messages instead of from polling the store.

It is the standalone :class:`~steadyvoice.jobs.worker.Worker` (liveness row, heartbeats that
renew the job's lease, the same runner) with the claim loop taken out: Celery delivers a job
id, and ``take`` claims through the store's fenced claim. The job row, not the broker, says
what runs.

- **Interactive lane** (queue ``<engine>``): the message claims *that* job. A message for a
  job that is no longer queued (another delivery or a holder below took it, it finished, it
  was canceled, it is past its deadline) is acknowledged and dropped, with a log line.
- **Batch lane** (queue ``<engine>.batch``): the job id is a hint. A batch message claims
  the next job of its engine in the store's order (an interactive one first, then the batch
  item fair share picks: :mod:`steadyvoice.jobs.claims`), so ``batch.max_running`` and the
  turns between tenants and batches hold under Celery as in every topology. While the cap is
  reached the message is *held*: its worker polls the store, runs any interactive job of its
  engine that comes in meanwhile (whose own message is later dropped), and claims a batch item
  as soon as one ends; after ``dispatch.batch_hold_seconds`` the message goes back to the end
  of its queue (``BatchLaneFull``: :mod:`.tasks` sends it again, then acknowledges it), which
  bounds a warm shutdown. It is dropped when no batch item of its engine is left queued.

The invariant that keeps every queued batch item reachable, per engine: *the messages the
broker holds for ``<engine>.batch`` (waiting, or delivered and unacknowledged) are at least
the batch items queued with ``published_at`` set.* A submit adds one item and one message; a
message is acknowledged only after it claimed one item (one less of each) or found none queued;
a held message stays unacknowledged (counted) or is put back (counted); a cancel only removes
an item; an item the reaper puts back in the queue (its lease ran out) is unsent again
(``published_at`` cleared), so the outbox sends it a message of its own. Which message claims
which item does not matter: the outbox's reaper (:mod:`.outbox`) counts exactly this per queue
and sends again only the shortfall, never per job: a message Redis lost, or one whose task
failed (the store away: Celery acknowledges it too). A spare message is harmless: dropped.
"""

from __future__ import annotations

import dataclasses
import logging
import resource
import threading
import time

from steadyvoice.dispatch.celery_app import queue_for
from steadyvoice.jobs import liveness
from steadyvoice.jobs.backoff import STORE_ERRORS
from steadyvoice.jobs.lanes import BATCH
from steadyvoice.jobs.reaper import release_gone_workers
from steadyvoice.jobs.store import Claim
from steadyvoice.jobs.worker import Worker, _guarded, _store_unavailable
from steadyvoice.observability import metrics
from steadyvoice.observability.logs import event

log = logging.getLogger("steadyvoice.worker")

MB = 1024 * 1024
KIB = 1024
# How often a held batch message looks again for a free slot or an interactive job: the most
# an interactive job waits while every free worker holds a batch message.
HOLD_POLL_SECONDS = 0.1


class BatchLaneFull(Exception):
    """A batch message held for ``dispatch.batch_hold_seconds`` while ``batch.max_running``
    batch items ran: it goes back to the end of ``queue``, and another look comes with its
    next delivery."""

    def __init__(self, message: str, job_id: str, queue: str) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.queue = queue


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
        """Claim and run the job a message names (for a batch item: the batch item next in
        turn); False when it was dropped instead. Raises ``BatchLaneFull`` for a batch
        message that waited out its hold."""
        self.tasks += 1
        try:
            named = self._store.get(job_id)
            if named.lane == BATCH:
                return self._take_batch(job_id, named.engine)
            claim = self._store.claim_job(job_id, self._id, self._settings.jobs.lease_seconds)
            if claim is None:
                self._dropped(job_id)
                return False
            self._run(claim)
            return True
        finally:
            self._note_recycle()

    def _take_batch(self, job_id: str, engine: str) -> bool:
        """A batch message: claim ``engine``'s next job under ``batch.max_running``, holding
        the message while the cap is reached (see the module's docstring)."""
        cap = self._settings.batch.max_running
        lease = self._settings.jobs.lease_seconds
        dispatch = self._settings.dispatch
        # Half republish_seconds at most: the reaper counts a delivered message as held for
        # republish_seconds, so a held message is never taken for a lost one.
        hold_until = time.monotonic() + min(
            dispatch.batch_hold_seconds, dispatch.republish_seconds / 2
        )
        while True:
            claim = self._store.claim(self._id, lease, batch_max_running=cap, engine=engine)
            if claim is not None:
                self._run(claim)
                if claim.job.lane == BATCH:
                    return True
                # An interactive job came in while the message was held; the hold still ends
                # on time, so a held message never outlives one job past batch_hold_seconds.
            elif not self._store.batch_waiting(engine):
                self._dropped(job_id)
                return False
            if time.monotonic() >= hold_until or self._state.stop.is_set():
                event(log, "job.message_requeued", job_id=job_id, engine=engine, cap=cap)
                running = f"batch.max_running={cap} {engine} batch items run"
                raise BatchLaneFull(running, job_id, queue_for(engine, BATCH))
            self._state.stop.wait(HOLD_POLL_SECONDS)

    def _dropped(self, job_id: str) -> None:
        status = self._store.get(job_id).status
        event(log, "job.message_dropped", job_id=job_id, status=status, worker_id=self._id)

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
