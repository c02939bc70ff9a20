"""Tables: API keys (hashes only), the append-only audit log and rate-limit windows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from steadyvoice.jobs.models import Base, UTCDateTime

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
AuditId = BigInteger().with_variant(Integer(), "sqlite")


class ApiKey(Base):
    """One API key. The secret itself is never stored: only its SHA-256."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(32))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    rate_per_minute: Mapped[int | None] = mapped_column(Integer)
    max_in_flight: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_by: Mapped[str] = mapped_column(String(128))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(128))


class AuditEvent(Base):
    """Who did what, to which object, with what outcome. Rows are never updated or deleted
    (database triggers refuse it)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(AuditId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    key_id: Mapped[str | None] = mapped_column(String(32), index=True)
    tenant: Mapped[str | None] = mapped_column(String(64), index=True)
    role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_id: Mapped[str | None] = mapped_column(String(128), index=True)
    outcome: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(8))
    route: Mapped[str] = mapped_column(String(256))
    client: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    # Calls this row stands for: 1, or the repeats of a refusal folded into one row.
    count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class AuditRotation(Base):
    """One run of ``steadyvoice audit rotate``: which rows left the log, into which archive.
    Append-only like the log; the log's DELETE trigger lets a row go only if one of these
    covers its id."""

    __tablename__ = "audit_rotations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    through_id: Mapped[int] = mapped_column(AuditId)
    before: Mapped[datetime] = mapped_column(UTCDateTime)
    rows: Mapped[int] = mapped_column(Integer)
    archive_sha256: Mapped[str] = mapped_column(String(64))
    by: Mapped[str] = mapped_column(String(128))


class RateWindow(Base):
    """Requests one key made in one clock minute; shared by every API process."""

    __tablename__ = "rate_windows"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer)
