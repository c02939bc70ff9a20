"""Is the job a worker runs still its own? A check cheap enough to make between sentences."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import exists, select
from sqlalchemy.exc import SQLAlchemyError

from steadyvoice.engines.interrupt import Abandoned
from steadyvoice.jobs.states import JobStatus
from steadyvoice.jobs.store import TIMEOUT, Claim, JobStore

# How often a check between sentences asks the store: a cancel stops the work within about
# this (plus the sentence in progress), not a lease heartbeat later. One indexed read each.
POLL_SECONDS = 0.5
# A claim whose record does not say its lease (never from JobStore.claim): the settings' default.
DEFAULT_LEASE_SECONDS = 30.0


class ClaimWatch:
    """Whether ``claim`` is still held, for the engine's checkpoints and the lease heartbeat.

    :meth:`check` (the engine's checkpoint, from any thread) asks the store at most every
    ``poll_seconds``; the heartbeat calls :meth:`lost` when the store refuses to renew the
    lease, and so does the runner when a fenced write is refused. Once lost, the claim stays
    lost: every later :meth:`check` raises :class:`Abandoned` at once, without asking again.

    It also keeps the lease's end on this process's monotonic clock (from the claim, then from
    each renewal the heartbeat reports): how long a write may be retried through a database
    blip (:mod:`steadyvoice.jobs.backoff`).
    """

    def __init__(
        self,
        store: JobStore,
        claim: Claim,
        poll_seconds: float = POLL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        lease_seconds: float | None = None,
    ) -> None:
        self.claim = claim
        self._store = store
        self._poll = poll_seconds
        self._clock = clock
        self.lease_seconds = lease_of(claim) if lease_seconds is None else lease_seconds
        # Counted from now, a little after the claim set it: the lease may end slightly sooner.
        self._lease_ends = clock() + self.lease_seconds
        self._next_poll = clock() + poll_seconds  # it was ours a moment ago: claimed just now
        self._lock = threading.Lock()
        self._why: tuple[str, str] | None = None  # (reason, status) once lost

    @property
    def gone(self) -> bool:
        return self._why is not None

    def check(self) -> None:
        """Raise :class:`Abandoned` if the claim is known lost, or found lost now."""
        if self._why is None and self._due() and not self._held():
            self.lost()
        if self._why is not None:
            raise Abandoned(*self._why)  # a new one each time: none keeps a traceback alive

    def lost(self) -> Abandoned:
        """Record that the claim is gone (why is read once, from the job) and return the
        :class:`Abandoned` to raise."""
        with self._lock:
            if self._why is None:
                self._why = self._why_lost()
            return Abandoned(*self._why)

    def _why_lost(self) -> tuple[str, str]:
        try:
            job = self._store.get(self.claim.job.id)
        except SQLAlchemyError:
            return "lease_lost", "unknown"  # gone (a fenced write said so), why unreadable
        if job.status == JobStatus.CANCELED.value:
            return "canceled", job.status
        if job.status == JobStatus.FAILED.value and job.error_code == TIMEOUT:
            return "timeout", job.status
        # Requeued (its lease ran out), and maybe already taken and run again elsewhere.
        return "lease_lost", job.status

    def now(self) -> float:
        """This watch's clock (monotonic): take it before asking the store to renew."""
        return self._clock()

    def renewed(self, asked_at: float) -> None:
        """The store extended the lease by a renewal sent at ``asked_at`` (:meth:`now`)."""
        with self._lock:
            self._lease_ends = max(self._lease_ends, asked_at + self.lease_seconds)

    def lease_left(self) -> float:
        """Seconds until the lease ends as far as this process knows; 0 once it is lost."""
        if self._why is not None:
            return 0.0
        with self._lock:
            return max(0.0, self._lease_ends - self._clock())

    def _due(self) -> bool:
        with self._lock:
            now = self._clock()
            if now < self._next_poll:
                return False
            self._next_poll = now + self._poll
            return True

    def _held(self) -> bool:
        """Whether the store still has the job as ours; True when it cannot say (a database
        blip must not fail a job: the heartbeat and the fenced final write still guard it)."""
        try:
            with self._store.reading() as s:
                return bool(s.scalar(select(exists().where(*JobStore.held(self.claim)))))
        except SQLAlchemyError:
            return True


def lease_of(claim: Claim, default: float = DEFAULT_LEASE_SECONDS) -> float:
    """The lease the claim was given, from its record (both times were set together)."""
    job = claim.job
    if job.lease_expires_at is None or job.started_at is None:
        return default
    seconds = (job.lease_expires_at - job.started_at).total_seconds()
    return seconds if seconds > 0 else default
