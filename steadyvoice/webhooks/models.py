"""``webhook_deliveries``: every attempt to call a job's or a batch's ``callback_url``.

The pending work itself lives on the job (batch) row: ``callback_url`` and ``webhook_state``
(``pending`` until ``delivered`` or ``failed``) with ``webhook_next_at`` (when the next attempt
is due), so a restarted sender picks up where the last one stopped.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from steadyvoice.jobs.models import Base, UTCDateTime

PENDING = "pending"


def initial_state(callback_url: str | None) -> str | None:
    """``webhook_state`` of a new job or batch: ``pending`` with a callback, else None."""
    return None if callback_url is None else PENDING


class WebhookDelivery(Base):
    """One delivery attempt: where it went, what it said and what came back."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_subject", "subject_id", "attempt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # "job" or "batch", and its id.
    kind: Mapped[str] = mapped_column(String(8))
    subject_id: Mapped[str] = mapped_column(String(32))
    tenant: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(32))  # "job.finished", "batch.finished"
    url: Mapped[str] = mapped_column(String(2048))
    # The address it connected to (after resolution and the address check); None: none allowed.
    address: Mapped[str | None] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer)
    # Why it failed ("timeout", "connect_error: ...", "address_refused: ..."); None: 2xx.
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
