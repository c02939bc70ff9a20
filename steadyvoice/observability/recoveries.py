"""Worker recoveries: how long a local worker slot was without a ready worker after a death.

The supervisor records one row per recovery (``worker_recoveries``) and one histogram sample
(``steadyvoice_worker_recovery_seconds``); ``steadyvoice slo report`` reads the rows, since it
runs in another process than the supervisor that measured them.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from steadyvoice.jobs.store import JobStore
from steadyvoice.observability import metrics
from steadyvoice.observability.logs import event
from steadyvoice.observability.models import WorkerRecovery
from steadyvoice.observability.slo_models import WorkerRecoveries
from steadyvoice.observability.slo_stats import median

log = logging.getLogger("steadyvoice.recoveries")

IMMEDIATE = "immediate"
BACKOFF = "backoff"


@dataclass(frozen=True)
class Recovered:
    """One recovery, as the supervisor measured it."""

    worker_id: str
    replacement_id: str
    exit_code: int
    died_at: datetime
    ready_at: datetime
    seconds: float
    backed_off: bool
    crashes: int

    @property
    def restart(self) -> str:
        return BACKOFF if self.backed_off else IMMEDIATE


def record(store: JobStore, recovered: Recovered) -> None:
    """Observe the metric, log ``worker.recovered`` and store the row (never raises)."""
    metrics.observe_worker_recovery(recovered.seconds, recovered.restart)
    event(
        log,
        "worker.recovered",
        worker_id=recovered.worker_id,
        replacement_id=recovered.replacement_id,
        seconds=round(recovered.seconds, 3),
        restart=recovered.restart,
        crashes=recovered.crashes,
    )
    try:
        with store.session() as s:
            s.add(
                WorkerRecovery(
                    host=socket.gethostname(),
                    worker_id=recovered.worker_id,
                    replacement_id=recovered.replacement_id,
                    exit_code=recovered.exit_code,
                    died_at=recovered.died_at,
                    ready_at=recovered.ready_at,
                    seconds=recovered.seconds,
                    restart=recovered.restart,
                    crashes=recovered.crashes,
                )
            )
    except Exception:  # the database may be down; the metric and the log have it
        log.exception("could not record a worker recovery")


def summary(store: JobStore, start: datetime, end: datetime) -> WorkerRecoveries:
    """Recoveries of workers that died in ``[start, end)``: counts, median and max seconds."""
    q = select(WorkerRecovery.seconds, WorkerRecovery.restart).where(
        WorkerRecovery.died_at >= start, WorkerRecovery.died_at < end
    )
    with store.reading() as s:
        rows = s.execute(q).all()
    seconds = [float(r.seconds) for r in rows]
    backoff = sum(1 for r in rows if r.restart == BACKOFF)
    return WorkerRecoveries(
        count=len(rows),
        immediate=len(rows) - backoff,
        backoff=backoff,
        median_seconds=median(seconds),
        max_seconds=max(seconds) if seconds else None,
    )
