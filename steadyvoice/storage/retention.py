"""The retention purge: a succeeded job's audio is deleted ``retention.outputs_days`` after the
job was created (per tenant: ``retention.tenants``; 0 keeps it forever), unless a legal hold
covers the job or its tenant (steadyvoice.storage.holds).

The job row stays, with its text, voice, engine, requester and SHA-256: the record of what was
said, for whom and by whom. ``purged_at`` marks it; downloads then answer 410 ``output_purged``.

A batch is two short transactions with the deletes between them, outside any transaction (a
slow or unreachable store must not hold the database's write lock, which on SQLite stalls
every writer of the service):

1. *claim*: read the candidates (holds excluded) and set their ``purge_started_at``;
2. delete their files, each with :data:`DELETE_RETRIES` retry at most;
3. *record*: for the deleted ones stamp ``purged_at``, take their bytes off the tenant's
   ``stored_bytes`` and write one audit row per job (``output.purge``); the ones whose delete
   failed get their claim back (``purge_started_at`` NULL) for the next round.

The files go before the stamp: a crash after a delete leaves an unstamped job whose file is
gone and whose claim is still set; once the claim is :data:`~steadyvoice.storage.holds.
CLAIM_STALE` old the next round takes it again (a delete of nothing is no error) and stamps it.
The other order could leave audio that the record says is gone. Claims and holds are
serialized (see holds), and a hold on a job (or a tenant) with a live claim is refused with
``output_purging``: the audio is being deleted, no hold can keep it.

Run by every API process's sweeper; batches are idempotent and serialized, so they need no
coordination. A round stops after ``max_batches``; the next round goes on.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, exists, or_, select, update

from steadyvoice.errors import OutputPurged, StorageError
from steadyvoice.jobs.models import Job, LegalHold, utcnow
from steadyvoice.jobs.states import JobStatus
from steadyvoice.jobs.store import JobStore
from steadyvoice.jobs.usage import add_stored_bytes
from steadyvoice.observability.logs import event
from steadyvoice.security.audit import OK, AuditEntry, as_row
from steadyvoice.settings import RetentionSettings
from steadyvoice.storage.backend import Storage
from steadyvoice.storage.holds import HoldKind, lock, unclaimed

log = logging.getLogger("steadyvoice.retention")

BATCH = 100  # files deleted per batch: each one a disk unlink or an S3 DELETE
# A delete runs outside any transaction, but a round should not wait out the upload's whole
# backoff per file on a store that is away: one retry, then the job waits for the next round.
DELETE_RETRIES = 1
MAX_BATCHES = 50
PURGE_ACTION = "output.purge"


@dataclass(frozen=True)
class PurgedOutput:
    """One output a batch purged, for what keeps copies of it (the conversion cache)."""

    job_id: str
    sha256: str | None
    sample_rate: int | None
    fmt: str


OnPurged = Callable[[PurgedOutput], object]
# What a batch reads of each due job: id, tenant, output name, size, SHA-256, rate, params.
Due = Select[str, str, str, int | None, str | None, int | None, dict[str, Any]]
DueRow = Row[str, str, str, int | None, str | None, int | None, dict[str, Any]]


@dataclass
class Purged:
    """What one purge round deleted."""

    jobs: int = 0
    bytes: int = 0
    by_tenant: Counter[str] = field(default_factory=Counter)


def not_purged(job: Job) -> None:
    """Raise ``output_purged`` (410) if ``job``'s audio was purged."""
    if job.purged_at is not None:
        raise OutputPurged(
            f"the audio of job {job.id} was deleted on {job.purged_at.isoformat()} by the "
            "retention policy; the record and its SHA-256 remain",
            job_id=job.id,
            purged_at=job.purged_at.isoformat(),
            sha256=job.sha256,
        )


def expired(settings: RetentionSettings, now: datetime) -> ColumnElement[bool] | None:
    """Which jobs are past their tenant's retention at ``now``; None when every tenant keeps
    its audio forever."""
    own = {t: r.outputs_days for t, r in settings.tenants.items() if r.outputs_days is not None}
    rules: list[ColumnElement[bool]] = []
    if settings.outputs_days > 0:
        cutoff = now - timedelta(days=settings.outputs_days)
        rules.append(and_(Job.tenant.not_in(list(own)), Job.created_at < cutoff))
    for tenant, days in sorted(own.items()):
        if days > 0:
            rules.append(and_(Job.tenant == tenant, Job.created_at < now - timedelta(days=days)))
    return or_(*rules) if rules else None


def _not_held() -> ColumnElement[bool]:
    job_hold = exists().where(LegalHold.kind == HoldKind.JOB.value, LegalHold.subject == Job.id)
    tenant_hold = exists().where(
        LegalHold.kind == HoldKind.TENANT.value, LegalHold.subject == Job.tenant
    )
    return ~job_hold & ~tenant_hold


def purge_outputs(
    store: JobStore,
    storage: Storage,
    settings: RetentionSettings,
    now: datetime | None = None,
    *,
    batch: int = BATCH,
    max_batches: int = MAX_BATCHES,
    on_purged: OnPurged | None = None,
) -> Purged:
    """One purge round; see the module. ``on_purged`` is told of each output once its batch
    is committed."""
    now = now or utcnow()
    rule = expired(settings, now)
    purged = Purged()
    if rule is None:
        return purged
    due = (
        select(
            Job.id,
            Job.tenant,
            Job.output_name,
            Job.size_bytes,
            Job.sha256,
            Job.sample_rate,
            Job.params,
        )
        .where(
            Job.status == JobStatus.SUCCEEDED.value,
            Job.purged_at.is_(None),
            rule,
            _not_held(),
            unclaimed(utcnow()),  # not being deleted by another round right now
        )
        .order_by(Job.created_at, Job.id)
        .limit(batch)
    )
    for _ in range(max_batches):
        found, clean = _purge_batch(store, storage, due, now, purged, on_purged)
        if found < batch or not clean:  # a store that fails deletes: try again next round
            break
    if purged.jobs:
        event(
            log,
            "retention.purged",
            jobs=purged.jobs,
            bytes=purged.bytes,
            tenants=dict(purged.by_tenant),
        )
    return purged


def _purge_batch(
    store: JobStore,
    storage: Storage,
    due: Due,
    now: datetime,
    purged: Purged,
    on_purged: OnPurged | None,
) -> tuple[int, bool]:
    """One batch: how many were due, and whether every delete went through."""
    claimed_at = utcnow()
    rows = _claim(store, due, claimed_at)
    if not rows:
        return 0, True
    gone: list[DueRow] = []
    for row in rows:  # outside any transaction: a slow store holds up no writer
        try:
            storage.delete(row.output_name, retries=DELETE_RETRIES)
        except (OSError, StorageError) as exc:
            event(log, "retention.delete_failed", level=logging.WARNING, error=str(exc))
            continue
        gone.append(row)
    stamped = _record(store, rows, gone, claimed_at, now)
    freed: Counter[str] = Counter()
    for row in stamped:
        freed[row.tenant] += int(row.size_bytes or 0)
    purged.jobs += len(stamped)
    purged.bytes += sum(freed.values())
    purged.by_tenant.update(r.tenant for r in stamped)
    if on_purged is not None:
        for row in stamped:
            fmt = str((row.params or {}).get("format", "wav"))
            on_purged(PurgedOutput(row.id, row.sha256, row.sample_rate, fmt))
    return len(rows), len(gone) == len(rows)


def _claim(store: JobStore, due: Due, claimed_at: datetime) -> list[DueRow]:
    """Mark the batch's jobs as being purged: from now on no hold can be placed on them."""
    with store.session() as s:
        lock(s)
        rows = list(s.execute(due))
        if rows:
            s.execute(
                update(Job)
                .where(Job.id.in_([r.id for r in rows]))
                .values(purge_started_at=claimed_at)
            )
    return rows


def _record(
    store: JobStore, rows: list[DueRow], gone: list[DueRow], claimed_at: datetime, now: datetime
) -> list[DueRow]:
    """Stamp what was deleted (still under our claim: a claim that went stale and was taken
    by another round is that round's to stamp); release the rest for the next round."""
    with store.session() as s:
        lock(s)
        ours = set(
            s.scalars(
                select(Job.id).where(
                    Job.id.in_([r.id for r in gone]),
                    Job.purge_started_at == claimed_at,
                    Job.purged_at.is_(None),
                )
            )
        )
        stamped = [r for r in gone if r.id in ours]
        s.execute(update(Job).where(Job.id.in_(ours)).values(purged_at=now))
        deleted = {r.id for r in gone}
        failed = [r.id for r in rows if r.id not in deleted]
        s.execute(
            update(Job)
            .where(Job.id.in_(failed), Job.purge_started_at == claimed_at)
            .values(purge_started_at=None)
        )
        freed: Counter[str] = Counter()
        for row in stamped:
            freed[row.tenant] += int(row.size_bytes or 0)
        for tenant, size in sorted(freed.items()):
            add_stored_bytes(s, tenant, -size)
        s.add_all(
            as_row(
                AuditEntry(
                    action=PURGE_ACTION,
                    outcome=OK,
                    status=200,
                    method="SYSTEM",
                    route="retention purge",
                    tenant=row.tenant,
                    object_id=row.id,
                )
            )
            for row in stamped
        )
    return stamped
