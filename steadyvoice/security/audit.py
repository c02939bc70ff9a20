"""The audit log: one row per state-changing call and per audio download, never changed.

Refusals of callers without a valid key are the exception: repeats are folded into one row with
a ``count`` (steadyvoice.security.refusals). Rows leave the log only through the rotation
procedure (steadyvoice.security.retention), which archives them first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from steadyvoice.jobs.models import utcnow
from steadyvoice.jobs.store import JobStore
from steadyvoice.security.models import AuditEvent

OK = "ok"


@dataclass(frozen=True)
class AuditEntry:
    """What happened, as the API saw it. ``outcome`` is ``ok`` or the error code answered."""

    action: str
    outcome: str
    status: int
    method: str
    route: str
    key_id: str | None = None
    tenant: str | None = None
    role: str | None = None
    object_id: str | None = None
    client: str | None = None
    request_id: str | None = None
    count: int = 1  # calls this row stands for: more than 1 only for folded refusals
    at: datetime | None = None  # when it happened; None: now


@dataclass(frozen=True)
class AuditQuery:
    """Filters for reading the log; every one optional. Newest first, paged by id."""

    key_id: str | None = None
    tenant: str | None = None
    action: str | None = None
    object_id: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None
    limit: int = 100


class AuditLog:
    """Appends to and reads ``audit_events``; there is no update or delete."""

    def __init__(self, store: JobStore) -> None:
        self._store = store

    def record(self, entry: AuditEntry) -> AuditEvent:
        return self.record_many([entry])[0]

    def record_many(self, entries: list[AuditEntry]) -> list[AuditEvent]:
        """Append ``entries`` in one transaction."""
        rows = [as_row(entry) for entry in entries]
        with self._store.session() as s:
            s.add_all(rows)
        return rows

    def query(self, q: AuditQuery) -> list[AuditEvent]:
        stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(q.limit)
        for column, value in (
            (AuditEvent.key_id, q.key_id),
            (AuditEvent.tenant, q.tenant),
            (AuditEvent.action, q.action),
            (AuditEvent.object_id, q.object_id),
            (AuditEvent.outcome, q.outcome),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        if q.since is not None:
            stmt = stmt.where(AuditEvent.at >= q.since)
        if q.until is not None:
            stmt = stmt.where(AuditEvent.at < q.until)
        if q.before_id is not None:
            stmt = stmt.where(AuditEvent.id < q.before_id)
        with self._store.reading() as s:
            return list(s.scalars(stmt))


def as_row(entry: AuditEntry) -> AuditEvent:
    return AuditEvent(
        at=entry.at or utcnow(),
        key_id=entry.key_id,
        tenant=entry.tenant,
        role=entry.role,
        action=entry.action[:64],
        object_id=(entry.object_id or None) and entry.object_id[:128],
        outcome=entry.outcome[:64],
        status=entry.status,
        method=entry.method[:8],
        route=entry.route[:256],
        client=entry.client and entry.client[:64],
        request_id=entry.request_id,
        count=entry.count,
    )
