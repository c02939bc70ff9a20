"""Deleting SLO bookkeeping older than its retention: ``refusals`` and closed ``incidents``.

Run by the API's periodic sweeper. Every API process sweeps; deletes are idempotent, so they
need no coordination. Rows go in batches, each its own short transaction, so a backlog (the
first sweep after an upgrade, a long overload) never holds a write lock for long; a round stops
after ``MAX_BATCHES`` and the next round goes on. An open incident is never deleted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import InstrumentedAttribute

from steadyvoice.jobs.models import utcnow
from steadyvoice.jobs.store import JobStore
from steadyvoice.observability.logs import event
from steadyvoice.observability.models import Incident, Refusal
from steadyvoice.settings import RetentionSettings

log = logging.getLogger("steadyvoice.retention")

BATCH = 1_000
MAX_BATCHES = 100  # per table and round: at most 100k rows, the rest in the next round


@dataclass(frozen=True)
class Swept:
    """Rows deleted by one round."""

    refusals: int
    incidents: int


def _delete_in_batches(
    store: JobStore,
    key: InstrumentedAttribute[int] | InstrumentedAttribute[str],
    expired: ColumnElement[bool],
    batch: int,
    max_batches: int,
) -> int:
    """Delete the rows of ``key``'s table matching ``expired``, ``batch`` rows per transaction."""
    table = key.class_
    ids = select(key).where(expired).limit(batch)
    deleted = 0
    for _ in range(max_batches):
        with store.session() as s:
            # The ids are read first (DELETE ... LIMIT is not portable); another API process
            # sweeping at once may delete some of them first, so count what this one deleted.
            found = list(s.scalars(ids))
            if found:
                result = s.execute(delete(table).where(key.in_(found)))
                deleted += int(getattr(result, "rowcount", 0) or 0)
        if len(found) < batch:
            break
    return deleted


def sweep_refusals(
    store: JobStore,
    keep: timedelta,
    now: datetime | None = None,
    *,
    batch: int = BATCH,
    max_batches: int = MAX_BATCHES,
) -> int:
    """Delete refusal rows older than ``keep``; returns how many."""
    cutoff = (now or utcnow()) - keep
    return _delete_in_batches(store, Refusal.id, Refusal.at < cutoff, batch, max_batches)


def sweep_incidents(
    store: JobStore,
    keep: timedelta,
    now: datetime | None = None,
    *,
    batch: int = BATCH,
    max_batches: int = MAX_BATCHES,
) -> int:
    """Delete incidents that ended more than ``keep`` ago (open ones stay); returns how many."""
    cutoff = (now or utcnow()) - keep
    ended = Incident.ended_at.is_not(None) & (Incident.ended_at < cutoff)
    return _delete_in_batches(store, Incident.id, ended, batch, max_batches)


def sweep(store: JobStore, settings: RetentionSettings, now: datetime | None = None) -> Swept:
    """One round over both tables, with their retention settings."""
    now = now or utcnow()
    swept = Swept(
        refusals=sweep_refusals(store, timedelta(days=settings.refusals_days), now),
        incidents=sweep_incidents(store, timedelta(days=settings.incidents_days), now),
    )
    if swept.refusals or swept.incidents:
        event(log, "retention.swept", refusals=swept.refusals, incidents=swept.incidents)
    return swept
