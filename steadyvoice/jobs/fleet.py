"""One view of every worker, local or remote, Celery or not: their rows in the job store.

Every worker process (``serve``'s, a standalone ``steadyvoice worker``, a Celery pool child)
registers and beats in the same ``workers`` table, so the store alone lists the whole fleet.
``GET /v1/workers`` and ``steadyvoice workers`` show it; ``/readyz`` counts the live ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from steadyvoice.jobs.dbclock import db_now
from steadyvoice.jobs.liveness import BUSY, READY
from steadyvoice.jobs.models import Worker
from steadyvoice.jobs.store import JobStore


@dataclass(frozen=True)
class Member:
    """One worker as the fleet view shows it."""

    id: str
    host: str
    pid: int
    engine: str
    queues: list[str]
    state: str
    live: bool  # beat within ``jobs.worker_ready_seconds``
    serving: bool  # live with its engine loaded: what readiness counts
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_age_seconds: float
    current_job: str | None
    jobs_done: int
    recycles: int
    metrics_port: int | None


def members(store: JobStore, live_seconds: float) -> list[Member]:
    """Every registered worker (the silent ones too, until the reaper prunes them), by host."""
    with store.reading() as s:
        now = db_now(s)
        rows = list(s.scalars(select(Worker).order_by(Worker.host, Worker.started_at)))
    return [_member(w, now, live_seconds) for w in rows]


def _member(w: Worker, now: datetime, live_seconds: float) -> Member:
    age = max(0.0, (now - w.heartbeat_at).total_seconds())
    live = age <= live_seconds
    return Member(
        id=w.id,
        host=w.host,
        pid=w.pid,
        engine=w.engine,
        queues=[q for q in (w.queues or "").split(",") if q],
        state=w.state,
        live=live,
        serving=live and w.state in (READY, BUSY),
        started_at=w.started_at,
        heartbeat_at=w.heartbeat_at,
        heartbeat_age_seconds=round(age, 3),
        current_job=w.current_job,
        jobs_done=w.jobs_done,
        recycles=w.recycles,
        metrics_port=w.metrics_port,
    )
