"""Batches in SQL: the one-transaction insert, reads scoped to a tenant, cancel and retry.

A batch's items are rows of ``batch_items``, each pointing at its current job. A retry gives a
failed row a new job (a finished job's state never changes back) and points the row at it;
the failed job stays, with its batch and row, as the record of the first attempt.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from steadyvoice.batches.models import Batch, BatchItem
from steadyvoice.batches.rows import Parsed
from steadyvoice.errors import BatchNotFound, IdempotencyKeyReused
from steadyvoice.jobs.database import newest_first
from steadyvoice.jobs.dbclock import db_now
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.states import JobStatus, sources_of
from steadyvoice.jobs.store import JobStore, NewJob, _queued
from steadyvoice.security.principal import Principal
from steadyvoice.webhooks.models import PENDING, initial_state

BATCH_ID = re.compile(r"^[0-9a-f]{32}$")
LANE = "batch"
PAGE = 500  # rows read at a time when walking a whole batch (the archive): constant memory


@dataclass(frozen=True)
class Summary:
    """A batch's current jobs: how many in each state, the first start and the last finish."""

    counts: dict[str, int]
    first_started: datetime | None
    last_finished: datetime | None

    def add(self, status: str, n: int, first: datetime | None, last: datetime | None) -> Summary:
        starts = [t for t in (self.first_started, first) if t is not None]
        ends = [t for t in (self.last_finished, last) if t is not None]
        return Summary(
            {**self.counts, status: n},
            min(starts, default=None),
            max(ends, default=None),
        )


def status_counts(s: Session, batch_id: str) -> dict[str, int]:
    """How many of the batch's current jobs (one per row: not those a retry replaced) are in
    each state; only states with any."""
    q = (
        select(Job.status, func.count())
        .join(BatchItem, Job.id == BatchItem.job_id)
        .where(BatchItem.batch_id == batch_id)
        .group_by(Job.status)
    )
    return {str(st): int(n) for st, n in s.execute(q).all()}


@dataclass(frozen=True)
class Item:
    """A batch row and its current job."""

    row: int
    name: str | None
    metadata: dict[str, object]
    job: Job


class BatchStore:
    """Batches on the job store's database."""

    def __init__(self, jobs: JobStore) -> None:
        self.jobs = jobs

    def create(
        self,
        parsed: Parsed,
        jobs: list[NewJob],
        caller: Principal,
        request_id: str | None,
        idempotency_key: str | None,
        request_hash: str,
        callback_url: str | None = None,
    ) -> tuple[Batch, bool]:
        """The batch and all its jobs in one transaction: all recorded, or none."""
        try:
            with self.jobs.session() as s:
                now = db_now(s)
                batch = Batch(
                    id=uuid.uuid4().hex,
                    tenant=caller.tenant,
                    requester=caller.key_id,
                    request_id=request_id,
                    created_at=now,
                    item_count=len(jobs),
                    source=parsed.source,
                    metadata_columns=list(parsed.columns),
                    idempotency_key=idempotency_key,
                    request_hash=request_hash,
                    callback_url=callback_url,
                    webhook_state=initial_state(callback_url),
                )
                s.add(batch)
                s.flush()  # a racing twin's key fails here, before thousands of rows
                for row, new in zip(parsed.rows, jobs, strict=True):
                    job = _queued(new, now)
                    job.lane, job.batch_id, job.batch_row = LANE, batch.id, row.number
                    s.add(job)
                    item = BatchItem(batch_id=batch.id, row=row.number, job_id=job.id)
                    item.name, item.item_metadata = row.name, row.metadata
                    s.add(item)
        except IntegrityError:
            if idempotency_key is None:
                raise
            first = self.find_repeat(caller.key_id, idempotency_key, request_hash)
            if first is None:
                raise
            return first, False
        return batch, True

    def find_repeat(self, requester: str, key: str, request_hash: str) -> Batch | None:
        """The batch this key already recorded; ``idempotency_key_reused`` for other items."""
        with self.jobs.reading() as s:
            batch = s.scalar(
                select(Batch).where(Batch.requester == requester, Batch.idempotency_key == key)
            )
        if batch is not None and batch.request_hash != request_hash:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used for a different batch", batch_id=batch.id
            )
        return batch

    def get(self, batch_id: str, tenant: str | None = None) -> Batch:
        """The batch; ``batch_not_found`` if missing or, with ``tenant``, another tenant's."""
        if not BATCH_ID.fullmatch(batch_id):
            raise BatchNotFound(f"no batch {batch_id!r}", batch_id=batch_id)
        with self.jobs.reading() as s:
            batch = s.get(Batch, batch_id)
        if batch is None or (tenant is not None and batch.tenant != tenant):
            raise BatchNotFound(f"no batch {batch_id}", batch_id=batch_id)
        return batch

    def list_batches(
        self, tenant: str | None, before: tuple[datetime, str] | None, limit: int
    ) -> list[Batch]:
        q = newest_first(select(Batch), Batch.created_at, Batch.id, before, limit)
        if tenant is not None:
            q = q.where(Batch.tenant == tenant)
        with self.jobs.reading() as s:
            return list(s.scalars(q))

    def items(
        self, batch_id: str, status: JobStatus | None = None, limit: int | None = None
    ) -> Iterator[Item]:
        """The batch's rows in order with their current jobs, read a page at a time."""
        after, left = 0, limit
        while left is None or left > 0:
            size = PAGE if left is None else min(PAGE, left)
            q = (
                select(BatchItem, Job)
                .join(Job, Job.id == BatchItem.job_id)
                .where(BatchItem.batch_id == batch_id, BatchItem.row > after)
                .order_by(BatchItem.row)
                .limit(size)
            )
            if status is not None:
                q = q.where(Job.status == status.value)
            with self.jobs.reading() as s:
                page = s.execute(q).all()
            for item, job in page:
                yield Item(item.row, item.name, dict(item.item_metadata), job)
            if len(page) < size:
                return
            after = page[-1][0].row
            left = None if left is None else left - len(page)

    def summaries(self, batch_ids: list[str]) -> tuple[dict[str, Summary], datetime]:
        """Each batch's counts and timing (one grouped query for them all), and the time now."""
        q = (
            select(
                BatchItem.batch_id,
                Job.status,
                func.count(),
                func.min(Job.started_at),
                func.max(Job.finished_at),
            )
            .join(Job, Job.id == BatchItem.job_id)
            .where(BatchItem.batch_id.in_(batch_ids))
            .group_by(BatchItem.batch_id, Job.status)
        )
        found = {bid: Summary({}, None, None) for bid in batch_ids}
        with self.jobs.reading() as s:
            rows = s.execute(q).all() if batch_ids else []
            now = db_now(s)
        for bid, status, n, first, last in rows:
            found[bid] = found[bid].add(str(status), int(n), _aware(first), _aware(last))
        return found, now

    def cancel(self, batch: Batch) -> int:
        """Cancel the batch's queued items (running ones finish); how many were canceled."""
        assert JobStatus.QUEUED in sources_of(JobStatus.CANCELED)
        with self.jobs.session() as s:
            now = db_now(s)
            moved = s.execute(
                update(Job)
                .where(Job.batch_id == batch.id, Job.status == JobStatus.QUEUED.value)
                .values(status=JobStatus.CANCELED.value, finished_at=now, lease_expires_at=None)
                .execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]
            s.execute(
                update(Batch)
                .where(Batch.id == batch.id, Batch.canceled_at.is_(None))
                .values(canceled_at=now)
            )
        return int(moved)

    def retry(self, batch: Batch, deadline_seconds: float) -> list[str]:
        """A new job for each failed row, with the failed job's params (so its seed): the new
        job makes the bytes the first would have. Returns the new jobs' ids."""
        made: list[str] = []
        with self.jobs.session() as s:
            now = db_now(s)
            q = (
                select(BatchItem, Job)
                .join(Job, Job.id == BatchItem.job_id)
                .where(BatchItem.batch_id == batch.id, Job.status == JobStatus.FAILED.value)
                .with_for_update()
            )
            for item, failed in s.execute(q).all():
                job = _queued(_again(failed, deadline_seconds), now)
                job.lane, job.batch_id, job.batch_row = LANE, batch.id, item.row
                s.add(job)
                item.job_id = job.id
                made.append(job.id)
            if made and batch.callback_url is not None:
                # It will finish again: its callback is due again then, with the new counts.
                s.execute(
                    update(Batch)
                    .where(Batch.id == batch.id)
                    .values(webhook_state=PENDING, webhook_next_at=None)
                )
        return made


def _again(failed: Job, deadline_seconds: float) -> NewJob:
    return NewJob(
        text=failed.text,
        voice=failed.voice,
        engine=failed.engine,
        engine_version=failed.engine_version,
        params=dict(failed.params),
        requester=failed.requester,
        deadline_seconds=deadline_seconds,
        request_id=failed.request_id,
        tenant=failed.tenant,
        spoken_text=failed.spoken_text,
        estimated_seconds=failed.estimated_seconds,
    )


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)  # SQLite's MIN/MAX come back as naive text
