"""Riding out a database blip inside a job: retry a store call with backoff while the lease lives.

Every write a worker makes for a job is fenced by its claim (:meth:`JobStore.held`: job, worker
and attempt), so doing one again is harmless: a chunk already there is kept, and a result whose
first commit did land (the error came after it) is refused the second time, which the runner
tells apart from a lost claim by reading the record. Past the lease, retrying is pointless (the
reaper takes the job back), so the error goes up and the runner leaves the job to the reaper.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError

from steadyvoice.jobs.watch import ClaimWatch
from steadyvoice.observability.logs import event

log = logging.getLogger("steadyvoice.runner")

T = TypeVar("T")

# What the job store raises when the database fails (unreachable, reset, "database is locked",
# a pool timeout). The engine never raises these: one of them is never an engine error.
STORE_ERRORS: tuple[type[Exception], ...] = (SQLAlchemyError,)

FIRST_DELAY = 0.1
MAX_DELAY = 2.0


def retry_store(
    op: Callable[[], T],
    what: str,
    watch: ClaimWatch,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``op()``; on a store error, again after 0.1 s, 0.2 s … (at most 2 s apart) while the
    job's lease lives, and for at most one lease length in all (a lease the heartbeat keeps
    renewing must not keep a failing call going forever). Then the last error is raised."""
    delay = FIRST_DELAY
    tries = 0
    give_up_at: float | None = None
    while True:
        try:
            return op()
        except STORE_ERRORS as exc:
            tries += 1
            now = watch.now()
            if give_up_at is None:
                give_up_at = now + watch.lease_seconds
            if watch.lease_left() <= delay or now + delay > give_up_at:
                event(
                    log,
                    "job.store_gave_up",
                    level=logging.WARNING,
                    what=what,
                    tries=tries,
                    error=_described(exc),
                )
                raise
            event(
                log,
                "job.store_retry",
                level=logging.WARNING,
                what=what,
                tries=tries,
                delay_s=delay,
                error=_described(exc),
            )
            sleep(delay)
            delay = min(delay * 2, MAX_DELAY)


def _described(exc: Exception) -> str:
    """The error's class and first line (never its SQL parameters: they may hold the text)."""
    origin = getattr(exc, "orig", None) or exc
    first = (str(origin).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:200]}"
