"""Is a standalone worker's main loop still moving? What its systemd watchdog pings depend on.

The heartbeat thread pings the watchdog and renews the job's lease; left to itself it would go
on while the main loop is stuck (a CUDA deadlock, synthesis that never returns), so systemd
would never restart the process and the job would wait for its deadline. :class:`Progress`
records when the main loop last moved on: each turn of the serve loop, and during a job each
engine checkpoint (before every sentence: :class:`ProgressWatch`). Past the current step's
limit the worker counts as stalled: the pings stop (systemd kills and restarts it after
``WatchdogSec``) and so do the lease renewals (the reaper requeues the job for another worker;
the attempt fences every later write of this one).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from steadyvoice.jobs.store import Claim, JobStore
from steadyvoice.jobs.watch import ClaimWatch

# Seconds of work one second of a job's audio may take at the worst (a GPU model on a slow or
# shared card, an engine without checkpoints whose whole job is one step) before it is a hang.
WORK_PER_AUDIO_SECOND = 10.0


class Progress:
    """When the main loop last moved on, and how long its current step may take.

    No limit until :meth:`serving` (loading an engine is covered by systemd's
    ``TimeoutStartSec``, and the watchdog only starts counting after READY=1).
    """

    def __init__(self, idle_limit: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_limit = idle_limit
        self._clock = clock
        self._lock = threading.Lock()
        self._last = clock()
        self._limit: float | None = None

    def serving(self) -> None:
        self._set(self.idle_limit)

    def waiting(self) -> None:
        """No limit until the next step: a Celery worker waits for a message as long as the
        queue stays empty, which is no hang (the consumer loop is Celery's, not ours)."""
        with self._lock:
            self._limit = None

    def step(self, limit: float) -> None:
        """A job began: it may go ``limit`` seconds between checkpoints."""
        self._set(limit)

    def mark(self) -> None:
        """The loop moved on (a poll turn, a sentence): from any thread."""
        with self._lock:
            self._last = self._clock()

    @property
    def limit(self) -> float | None:
        return self._limit

    def stalled(self) -> bool:
        with self._lock:
            return self._limit is not None and self._clock() - self._last > self._limit

    def healthy(self) -> bool:
        return not self.stalled()

    def _set(self, limit: float) -> None:
        with self._lock:
            self._last, self._limit = self._clock(), limit


def idle_limit(lease_seconds: float, poll_seconds: float) -> float:
    """How long one turn of the serve loop (a claim, a doorbell wait) may take: two leases.

    A database that stopped answering fails a call well within that (the statement timeout and
    TCP keepalives of ``database.*``), so only a stuck process goes past it.
    """
    return max(2 * lease_seconds, 4 * poll_seconds)


def step_limit(claim: Claim, floor: float, max_audio_seconds: float) -> float:
    """How long a job may go between checkpoints: ``WORK_PER_AUDIO_SECOND`` times its audio
    (as estimated at submit; unknown: ``jobs.max_audio_seconds``), at least ``floor``, and no
    longer than the job has left before its deadline (past it the job is failed anyway)."""
    job = claim.job
    audio = job.estimated_seconds or max_audio_seconds
    limit = max(floor, audio * WORK_PER_AUDIO_SECOND)
    if job.started_at is not None:  # both times are the database's: no clock skew
        left = (job.deadline_at - job.started_at).total_seconds()
        limit = min(limit, max(floor, left))
    return limit


class ProgressWatch(ClaimWatch):
    """A :class:`ClaimWatch` whose every check (an engine checkpoint) counts as progress."""

    def __init__(
        self, store: JobStore, claim: Claim, progress: Progress, lease_seconds: float
    ) -> None:
        super().__init__(store, claim, lease_seconds=lease_seconds)
        self._progress = progress

    def check(self) -> None:
        self._progress.mark()
        super().check()
