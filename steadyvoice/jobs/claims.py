"""Which queued job a worker takes next: the interactive lane first, then batch items shared
fairly, by tenant and then by batch.

Interactive jobs go oldest first. When none is waiting, the batch lane goes round-robin: the
tenant with queued batch items whose last batch claim is oldest (one never claimed from goes
first), then within it the batch whose last claim is oldest, then that batch's lowest row. So
a tenant's 10,000 queued items take turns with another tenant's 10 instead of going ahead.

"Last claim" is read from the jobs themselves (``started_at`` is set by every claim), so there
is no turn table to keep in step. Every step is a few index seeks however long the queue is:

- the tenants (and a tenant's batches) with queued items are listed by a loose index scan
  (a recursive query that jumps from one value to the next on ``ix_jobs_lane_fair``), which
  costs one seek per distinct tenant or batch, not one row per queued item;
- a tenant's (a batch's) last claim is the top of ``ix_jobs_tenant_lane_started``
  (``ix_jobs_batch_started``);
- the item is the first of ``ix_jobs_lane_fair`` for that (tenant, batch).

The same SQL runs on SQLite and PostgreSQL. On PostgreSQL the row is taken ``FOR UPDATE SKIP
LOCKED``: two workers that pick the same batch at once take its next two items. The store
fences the move itself (``JobStore.claim``), so a lost race is only a retry.

``engine`` narrows every step to one engine's jobs: a Celery worker claims for the queue a
message came from (steadyvoice.dispatch.consumer), so the cap and the turns are that engine's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import Select, func, select, text
from sqlalchemy.orm import Session

from steadyvoice.jobs.lanes import BATCH, INTERACTIVE
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.states import JobStatus

QUEUED: Final = JobStatus.QUEUED.value


def _turn_sql(column: str, scope: str) -> str:
    """The ``column`` value (tenant or batch_id) with queued batch items, among those matching
    ``scope``, whose last batch claim is oldest; never-claimed values first."""
    last = {
        "tenant": "j.tenant = v.candidate AND j.lane = :batch",
        "batch_id": "j.batch_id = v.candidate",
    }[column]
    queued = f"status = :queued AND lane = :batch AND {scope}"
    # Only this module's constant names are formatted in; every value is a bound parameter.
    return f"""
WITH RECURSIVE v(candidate) AS (
  SELECT (SELECT {column} FROM jobs WHERE {queued} AND {column} IS NOT NULL
          ORDER BY {column} LIMIT 1)
  UNION ALL
  SELECT (SELECT {column} FROM jobs WHERE {queued} AND {column} > v.candidate
          ORDER BY {column} LIMIT 1)
  FROM v WHERE v.candidate IS NOT NULL
)
SELECT x.candidate FROM (
  SELECT v.candidate AS candidate,
         (SELECT j.started_at FROM jobs j WHERE {last} AND j.started_at IS NOT NULL
          ORDER BY j.started_at DESC LIMIT 1) AS last_at
  FROM v WHERE v.candidate IS NOT NULL
) x
ORDER BY (x.last_at IS NOT NULL), x.last_at, x.candidate
LIMIT 1
"""  # noqa: S608


TENANT_TURN: Final = text(_turn_sql("tenant", "1 = 1"))
BATCH_TURN: Final = text(_turn_sql("batch_id", "tenant = :tenant"))
# The same, among one engine's jobs.
ENGINE_TENANT_TURN: Final = text(_turn_sql("tenant", "engine = :engine"))
ENGINE_BATCH_TURN: Final = text(_turn_sql("batch_id", "tenant = :tenant AND engine = :engine"))
# Batch claims under a cap take turns (PostgreSQL), per engine: see ``next_job_id``.
_CAP_LOCK: Final = text("SELECT pg_advisory_xact_lock(CAST(:key AS INTEGER), hashtext(:engine))")
_CAP_LOCK_KEY: Final = 0x5E4D_0B0D


def next_job_id(
    s: Session, now: datetime, batch_max_running: int = 0, engine: str | None = None
) -> str | None:
    """The id of the job to claim next (locked on PostgreSQL), or None when nothing waits.

    With ``batch_max_running`` (``batch.max_running``; 0: no cap), no batch item is taken
    while that many run (of ``engine``'s jobs; None: of all). On PostgreSQL the batch claims
    under a cap take turns on a transaction-scoped advisory lock, so each one counts what
    the one before it committed: the cap holds exactly, even across hosts. (SQLite has one
    writer at a time.)
    """
    locking = s.get_bind().dialect.name == "postgresql"
    interactive = _queued(INTERACTIVE, now, engine).order_by(Job.created_at, Job.id)
    job_id = _first(s, interactive, locking)
    if job_id is not None:
        return job_id
    if batch_max_running:
        if locking:
            s.execute(_CAP_LOCK, {"key": _CAP_LOCK_KEY, "engine": engine or ""})
        if _batch_running(s, engine) >= batch_max_running:
            return None
    return _fair_batch_item(s, now, locking, engine)


def batch_waiting(s: Session, now: datetime, engine: str | None = None) -> bool:
    """Whether a batch item (of ``engine``) is queued and inside its deadline."""
    return s.scalar(_queued(BATCH, now, engine).limit(1)) is not None


def _batch_running(s: Session, engine: str | None) -> int:
    q = select(func.count()).where(Job.status == JobStatus.RUNNING.value, Job.lane == BATCH)
    if engine is not None:
        q = q.where(Job.engine == engine)
    return int(s.scalar(q) or 0)


def _fair_batch_item(s: Session, now: datetime, locking: bool, engine: str | None) -> str | None:
    params = {"queued": QUEUED, "batch": BATCH}
    tenant_turn, batch_turn = TENANT_TURN, BATCH_TURN
    if engine is not None:
        params["engine"] = engine
        tenant_turn, batch_turn = ENGINE_TENANT_TURN, ENGINE_BATCH_TURN
    tenant = s.scalar(tenant_turn, params)
    if tenant is not None:
        batch = s.scalar(batch_turn, {**params, "tenant": tenant})
        if batch is not None:
            q = _queued(BATCH, now, engine).where(Job.tenant == tenant, Job.batch_id == batch)
            job_id = _first(s, q.order_by(Job.batch_row, Job.id), locking)
            if job_id is not None:
                return job_id
    # That batch's items are all past their deadline (the reaper fails them) or held by
    # other claims, or items without a batch: the oldest batch item that can be taken.
    oldest = _queued(BATCH, now, engine).order_by(Job.created_at, Job.id)
    return _first(s, oldest, locking)


def _queued(lane: str, now: datetime, engine: str | None) -> Select[str]:
    q = select(Job.id).where(Job.status == QUEUED, Job.lane == lane, Job.deadline_at > now)
    return q if engine is None else q.where(Job.engine == engine)


def _first(s: Session, q: Select[str], locking: bool) -> str | None:
    q = q.limit(1)
    if locking:
        q = q.with_for_update(skip_locked=True)
    return s.scalar(q)
