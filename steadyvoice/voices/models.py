"""The ``voices`` table: one row per voice profile, kept after deletion for history and audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from steadyvoice.jobs.models import Base, UTCDateTime


class Voice(Base):
    """A reference recording, the speaker's consent and the analysis engines adapt toward."""

    __tablename__ = "voices"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(128))  # the API key id (or cli:<user>)
    tenant: Mapped[str] = mapped_column(String(64), server_default="default", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    request_id: Mapped[str | None] = mapped_column(String(64))
    consent: Mapped[str] = mapped_column(Text)
    transcript: Mapped[str | None] = mapped_column(Text)
    # The language of the reference recording: declared at upload or detected from the transcript.
    language: Mapped[str | None] = mapped_column(String(16))
    reference_name: Mapped[str] = mapped_column(String(256))
    reference_sha256: Mapped[str] = mapped_column(String(64))
    reference_bytes: Mapped[int] = mapped_column(Integer)
    reference_format: Mapped[str] = mapped_column(String(16))
    sample_rate: Mapped[int] = mapped_column(Integer)
    channels: Mapped[int] = mapped_column(Integer)
    file_seconds: Mapped[float] = mapped_column(Float)
    speech_seconds: Mapped[float] = mapped_column(Float)
    measurements: Mapped[dict[str, Any]] = mapped_column(JSON)
    analysis: Mapped[dict[str, Any]] = mapped_column(JSON)
    analysis_version: Mapped[str] = mapped_column(String(64))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_by: Mapped[str | None] = mapped_column(String(128))
