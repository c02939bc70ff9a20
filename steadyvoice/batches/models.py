"""The ``batches`` table (one row per accepted batch) and ``batch_items`` (one per row)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from steadyvoice.jobs.models import Base, UTCDateTime


class Batch(Base):
    """A batch request: who sent it, how many items, and how to recognise a repeat of it."""

    __tablename__ = "batches"
    __table_args__ = (
        UniqueConstraint("requester", "idempotency_key", name="uq_batches_idem"),
        Index("ix_batches_tenant_created_at", "tenant", "created_at"),
        Index("ix_batches_webhook_state_next_at", "webhook_state", "webhook_next_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    requester: Mapped[str] = mapped_column(String(128))  # the API key id
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    item_count: Mapped[int] = mapped_column(Integer)
    # "json", "csv" or "jsonl": how the items came.
    source: Mapped[str] = mapped_column(String(16))
    # The free metadata columns, in the order the upload gave them (the manifests keep it).
    metadata_columns: Mapped[list[str]] = mapped_column(JSON)
    idempotency_key: Mapped[str | None] = mapped_column(String(256))
    # SHA-256 of the items as validated: a repeated key with other items is refused.
    request_hash: Mapped[str] = mapped_column(String(64))
    # Called when the batch finishes (steadyvoice.webhooks; columns of migration 0011).
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    webhook_state: Mapped[str | None] = mapped_column(String(16))
    webhook_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BatchItem(Base):
    """One row of a batch: its current job (a retry points it at a new one), name, metadata."""

    __tablename__ = "batch_items"

    batch_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    row: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    job_id: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    item_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
