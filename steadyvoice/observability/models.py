"""SLO bookkeeping: incidents, admission refusals, monitor beats and worker recoveries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from steadyvoice.jobs.models import Base, UTCDateTime


class Incident(Base):
    """A stretch of time the service was not ready; ``ended_at`` is null while it lasts."""

    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(String(512))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    detected_by: Mapped[str] = mapped_column(String(128))


class Refusal(Base):
    """Jobs refused by admission control (503): never accepted, so never job rows.

    One row aggregates ``count`` refusals for one ``reason`` counted in memory up to ``at`` (at
    most one row per reason per second and API process); ``chars`` is their total text length.
    """

    __tablename__ = "refusals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    reason: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer)
    chars: Mapped[int] = mapped_column(Integer)


class MonitorBeat(Base):
    """When each readiness monitor last ran: a gap longer than its interval was an outage."""

    __tablename__ = "monitor_beats"

    monitor: Mapped[str] = mapped_column(String(128), primary_key=True)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WorkerRecovery(Base):
    """A local worker that died, and when the supervisor had its replacement ready again.

    ``seconds`` is measured on the supervisor's monotonic clock from the exit it saw to the
    replacement's ready report; ``restart`` is ``immediate`` or ``backoff`` (some wait was applied
    because the slot looked like a crash loop); ``crashes`` counts replacements that died before
    one was ready.
    """

    __tablename__ = "worker_recoveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(255))
    worker_id: Mapped[str] = mapped_column(String(128))
    replacement_id: Mapped[str] = mapped_column(String(128))
    exit_code: Mapped[int] = mapped_column(Integer)
    died_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ready_at: Mapped[datetime] = mapped_column(UTCDateTime)
    seconds: Mapped[float] = mapped_column(Float)
    restart: Mapped[str] = mapped_column(String(16))
    crashes: Mapped[int] = mapped_column(Integer)
