"""SQLAlchemy tables: jobs (the record of truth) and workers (liveness for readiness)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Job(Base):
    """One synthesis request and everything needed to prove what was produced from it."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("requester", "idempotency_key", name="uq_jobs_idem"),
        # Admission's "recent succeeded jobs" query: no sort over every succeeded job.
        Index("ix_jobs_status_created_at", "status", "created_at"),
        # A tenant's newest jobs, and a key's jobs in flight (quota), without a scan.
        Index("ix_jobs_tenant_created_at", "tenant", "created_at"),
        Index("ix_jobs_requester_status", "requester", "status"),
        # The claim takes the interactive lane first, then batch items fairly (jobs/claims).
        Index("ix_jobs_status_lane_created_at", "status", "lane", "created_at"),
        Index("ix_jobs_batch_id_row", "batch_id", "batch_row"),
        # The retention purge's "succeeded, not purged, older than" scan (storage/retention).
        Index("ix_jobs_status_purged_at_created_at", "status", "purged_at", "created_at"),
        # Fair share between batches: a loose scan of the tenants (batches) with queued items,
        # and each one's last claim (jobs/claims). Migration 0011.
        Index("ix_jobs_lane_fair", "status", "lane", "tenant", "batch_id", "batch_row"),
        Index("ix_jobs_tenant_lane_started", "tenant", "lane", "started_at"),
        Index("ix_jobs_batch_started", "batch_id", "started_at"),
        # Callbacks due (steadyvoice.webhooks).
        Index("ix_jobs_webhook_state_next_at", "webhook_state", "webhook_next_at"),
        # The Celery outbox's "queued, not sent (or sent long ago)" scan (steadyvoice.dispatch).
        Index("ix_jobs_status_published_at", "status", "published_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    text: Mapped[str] = mapped_column(Text)
    # What the engine was given to speak: ``text`` after normalization (None: the same).
    spoken_text: Mapped[str | None] = mapped_column(Text)
    # The audio seconds it will make, estimated at submit (None: the engine cannot tell);
    # a tenant's daily audio quota counts it until the job has its real duration.
    estimated_seconds: Mapped[float | None] = mapped_column(Float)
    voice: Mapped[str] = mapped_column(String(128))
    engine: Mapped[str] = mapped_column(String(32))
    engine_version: Mapped[str | None] = mapped_column(String(256))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    requester: Mapped[str] = mapped_column(String(128))  # the API key id
    tenant: Mapped[str] = mapped_column(String(64), server_default="default")
    request_id: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(256))
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    output_name: Mapped[str] = mapped_column(String(256))
    sample_rate: Mapped[int | None] = mapped_column(Integer)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    sha256: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    # Scheduling lane: "interactive" (single jobs, /v1/audio/speech) or "batch" (batch items).
    lane: Mapped[str] = mapped_column(String(16), server_default="interactive")
    # A batch item's batch and its row in the uploaded file (1-based); NULL for single jobs.
    batch_id: Mapped[str | None] = mapped_column(String(32))
    batch_row: Mapped[int | None] = mapped_column(Integer)
    # Called when the job finishes (steadyvoice.webhooks): "pending" until "delivered" or
    # "failed"; NULL without a callback. The next attempt is due at webhook_next_at.
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    webhook_state: Mapped[str | None] = mapped_column(String(16))
    webhook_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the retention policy deleted the audio (steadyvoice.storage.retention); the row,
    # with its SHA-256, stays as the record of what was made.
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When a purge round claimed the audio for deletion (deleted outside any transaction, then
    # purged_at is stamped); a hold is refused meanwhile. NULL again if the delete failed.
    purge_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the job was last sent to the Celery broker (steadyvoice.dispatch.outbox); NULL: not
    # yet, or never (embedded mode). Migration 0013.
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LegalHold(Base):
    """A legal hold on one job's audio (``kind`` "job") or on all of a tenant's ("tenant"):
    the retention purge skips what is held (steadyvoice.storage.holds)."""

    __tablename__ = "legal_holds"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    subject: Mapped[str] = mapped_column(String(64), primary_key=True)  # job id or tenant
    reason: Mapped[str] = mapped_column(Text)
    placed_by: Mapped[str] = mapped_column(String(128))
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TenantUsage(Base):
    """A tenant's running total of stored audio: the bytes of its succeeded jobs' outputs,
    added in the transaction that records each success (steadyvoice.jobs.usage), so the
    ``stored_bytes`` quota reads one row instead of summing every job the tenant ever had."""

    __tablename__ = "tenant_usage"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    stored_bytes: Mapped[int] = mapped_column(BigInteger)


class Worker(Base):
    """A worker process's heartbeat: readiness needs a live worker with its engine loaded."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    engine: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    current_job: Mapped[str | None] = mapped_column(String(32))
    jobs_done: Mapped[int] = mapped_column(Integer, default=0)
    # ``steadyvoice.jobs.identity.process_key``: lets a later ``serve`` on this host prove the
    # process is gone and requeue its jobs at once (None: no proof possible, wait for the lease).
    process: Mapped[str | None] = mapped_column(String(128))
    # The fleet view (migration 0013): the Celery queues it consumes, comma-separated (None: a
    # worker that claims from the store), how often its slot was recycled, and its /metrics port.
    queues: Mapped[str | None] = mapped_column(String(255))
    recycles: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    metrics_port: Mapped[int | None] = mapped_column(Integer)


class JobChunk(Base):
    """A piece of a streaming job's audio, published by the worker as soon as it is made.

    16-bit little-endian mono PCM at ``sample_rate``. Kept only while a client may still read
    it: the reaper deletes a finished job's chunks after ``speech.chunk_retention_seconds``.
    """

    __tablename__ = "job_chunks"

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    attempt: Mapped[int] = mapped_column(Integer)
    sample_rate: Mapped[int] = mapped_column(Integer)
    pcm: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
