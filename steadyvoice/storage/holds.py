"""Legal holds: a job's audio, or all of a tenant's, that the retention purge must not delete.

A hold is a row in ``legal_holds`` keyed by what it holds (``job`` + job id, or ``tenant`` +
tenant name); lifting it deletes the row. Placing or lifting one and a purge batch never
interleave: on SQLite every write transaction takes the database's write lock up front, on
PostgreSQL both take :data:`RETENTION_LOCK_ID` (``steadyvoice.storage.retention``), so a
purge that read the holds cannot delete what a hold placed meanwhile protects. A purge batch
claims its jobs first (``purge_started_at``) and deletes their files outside any transaction;
a hold on a job or tenant with a live claim is refused (``output_purging``, 409): that audio is
being deleted, and a retry a moment later answers ``output_purged`` or places the hold.

Who placed or lifted a hold is in the audit log: the API's middleware records the call, the
CLI records its own row (:func:`audited`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, and_, delete, exists, or_, select, text
from sqlalchemy.orm import Session

from steadyvoice.errors import HoldNotFound, InvalidRequest, OutputPurging
from steadyvoice.jobs.models import Job, LegalHold, utcnow
from steadyvoice.jobs.store import JobStore
from steadyvoice.security.audit import OK, AuditEntry, AuditLog
from steadyvoice.security.principal import TENANT_NAME

RETENTION_LOCK_ID = 0x5736_0012  # PostgreSQL advisory lock: holds against purge batches
MAX_REASON_CHARS = 2_000
# A purge claim this old is a dead round's (a batch's deletes take seconds): the next round
# takes the job again, and a hold may be placed on it meanwhile.
CLAIM_STALE = timedelta(minutes=10)


class HoldKind(StrEnum):
    """What a hold covers."""

    JOB = "job"
    TENANT = "tenant"


def lock(s: Session) -> None:
    """Serialize ``s``'s transaction with hold changes and purge batches (PostgreSQL; SQLite's
    ``BEGIN IMMEDIATE`` does it already)."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": RETENTION_LOCK_ID})


def purging(now: datetime) -> ColumnElement[bool]:
    """Jobs whose audio a purge round is deleting right now (a live claim, not yet stamped)."""
    return and_(Job.purged_at.is_(None), Job.purge_started_at > now - CLAIM_STALE)


def unclaimed(now: datetime) -> ColumnElement[bool]:
    """Jobs no live purge claim covers (none, or a dead round's)."""
    return or_(Job.purge_started_at.is_(None), Job.purge_started_at <= now - CLAIM_STALE)


class Holds:
    """Places, lifts and lists legal holds."""

    def __init__(self, store: JobStore) -> None:
        self._store = store

    def place(self, kind: HoldKind, subject: str, reason: str, by: str) -> LegalHold:
        """Hold ``subject``; placing a hold that exists already returns the first one (its
        reason and author stay). A job must exist and still have its audio."""
        self._check_subject(kind, subject)
        if not reason.strip() or len(reason) > MAX_REASON_CHARS:
            raise InvalidRequest(
                f"a hold needs a reason of 1 to {MAX_REASON_CHARS} characters", field="reason"
            )
        with self._store.session() as s:
            lock(s)
            held = s.get(LegalHold, (kind.value, subject))
            if held is not None:
                return held
            _not_being_purged(s, kind, subject)
            hold = LegalHold(
                kind=kind.value,
                subject=subject,
                reason=reason,
                placed_by=by[:128],
                placed_at=utcnow(),
            )
            s.add(hold)
        return hold

    def lift(self, kind: HoldKind, subject: str) -> LegalHold:
        """Remove the hold on ``subject``; ``hold_not_found`` (404) if there is none."""
        with self._store.session() as s:
            lock(s)
            held = s.get(LegalHold, (kind.value, subject))
            if held is None:
                raise HoldNotFound(f"no {kind.value} hold on {subject!r}", subject=subject)
            s.execute(
                delete(LegalHold).where(LegalHold.kind == kind.value, LegalHold.subject == subject)
            )
        return held

    def list(self, kind: HoldKind | None = None) -> list[LegalHold]:
        """Every hold (of ``kind``), oldest first."""
        q = select(LegalHold).order_by(LegalHold.placed_at, LegalHold.kind, LegalHold.subject)
        if kind is not None:
            q = q.where(LegalHold.kind == kind.value)
        with self._store.reading() as s:
            return list(s.scalars(q))

    def _check_subject(self, kind: HoldKind, subject: str) -> None:
        if kind is HoldKind.TENANT:
            if not TENANT_NAME.fullmatch(subject):
                raise InvalidRequest(f"not a tenant name: {subject!r}", field="tenant")
            return
        from steadyvoice.storage.retention import not_purged  # retention imports this module

        not_purged(self._store.get(subject))  # job_not_found if there is none


def _not_being_purged(s: Session, kind: HoldKind, subject: str) -> None:
    whose = Job.id == subject if kind is HoldKind.JOB else Job.tenant == subject
    if s.scalar(select(exists().where(whose, purging(utcnow())))):
        raise OutputPurging(
            f"the retention purge is deleting audio of {kind.value} {subject} right now; "
            "retry in a moment",
            subject=subject,
        )


def audited(audit: AuditLog, action: str, hold: LegalHold, route: str) -> None:
    """Record a hold change made outside the API (the CLI) in the audit log."""
    audit.record(
        AuditEntry(
            action=action,
            outcome=OK,
            status=200,
            method="CLI",
            route=route,
            tenant=hold.subject if hold.kind == HoldKind.TENANT.value else None,
            object_id=hold.subject,
        )
    )
