"""Per-tenant quotas: stored audio (bytes) and audio seconds per UTC day, checked at submit.

Every key of a tenant shares its quotas (``quotas.*``, with per-tenant overrides in
``quotas.tenants``; 0 is no quota). A new job is refused before it is recorded:

- ``storage_quota_exceeded`` (403) when the tenant's succeeded jobs' outputs already add up to
  its ``stored_bytes``. A job's size is known only once it is made, so a tenant can pass the
  quota by the outputs of the jobs it has in flight; outputs are never deleted by the service,
  so this quota does not reset by itself (an operator raises it).
- ``audio_quota_exceeded`` (429, ``Retry-After`` until midnight UTC) when the tenant's audio of
  the current UTC day (on the database's clock) plus this job's estimate would pass its
  ``audio_seconds_per_day``. A job counts toward the day it was accepted: from acceptance by
  its estimate (:mod:`steadyvoice.jobs.caps`), once it succeeds by its real duration, and not at
  all if it fails or is canceled. A job whose engine gives no estimate counts from when it
  succeeds, and is refused only once the day's quota is spent.

The check and the insert are separate transactions: concurrent submissions may each see room
for one more job, so a tenant can pass a quota by the jobs it submits at the same instant
(bounded by its keys' ``max_in_flight``, each job by ``jobs.max_audio_seconds``).

Each check is one indexed query per quota in force, none when the tenant has no quota: the
stored bytes are one row of ``tenant_usage``, a running total kept by the job store
(:mod:`steadyvoice.jobs.usage`); the day's seconds are summed over the tenant's jobs of the
day through the ``(tenant, created_at)`` index, so they cost in proportion to that day's jobs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from steadyvoice.errors import AudioQuotaExceeded, StorageQuotaExceeded
from steadyvoice.jobs.dbclock import db_now
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.states import JobStatus
from steadyvoice.jobs.store import IN_FLIGHT, JobStore
from steadyvoice.jobs.usage import stored_bytes
from steadyvoice.settings import QuotaSettings

STORED_BYTES = "stored_bytes"
AUDIO_SECONDS_PER_DAY = "audio_seconds_per_day"


@dataclass(frozen=True)
class Limits:
    """A tenant's quotas in force (0: none)."""

    stored_bytes: int
    audio_seconds_per_day: float


@dataclass(frozen=True)
class Usage:
    """What a tenant has used at ``now`` (the database's clock): stored bytes, and audio
    seconds since the day began (midnight UTC)."""

    stored_bytes: int
    audio_seconds_today: float
    now: datetime

    @property
    def day_start(self) -> datetime:
        return day_start(self.now)

    @property
    def resets_at(self) -> datetime:
        """When the day's audio seconds start again from zero: the next midnight UTC."""
        return self.day_start + timedelta(days=1)


def limits_for(settings: QuotaSettings, tenant: str) -> Limits:
    """``tenant``'s own quotas where ``quotas.tenants`` sets them, the defaults elsewhere."""
    own = settings.tenants.get(tenant)
    stored = own.stored_bytes if own is not None else None
    seconds = own.audio_seconds_per_day if own is not None else None
    return Limits(
        stored_bytes=settings.stored_bytes if stored is None else stored,
        audio_seconds_per_day=settings.audio_seconds_per_day if seconds is None else seconds,
    )


def day_start(now: datetime) -> datetime:
    """Midnight UTC of ``now``'s day."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


class Quotas:
    """Refuses a tenant's new job once one of its quotas is spent."""

    def __init__(self, settings: QuotaSettings, store: JobStore) -> None:
        self._settings = settings
        self._store = store

    def check(self, tenant: str, estimated_seconds: float | None) -> None:
        """Return if ``tenant`` may have a new job of ``estimated_seconds`` (None: unknown)."""
        limits = limits_for(self._settings, tenant)
        if not limits.stored_bytes and not limits.audio_seconds_per_day:
            return
        usage = self.usage(tenant, limits)
        if limits.stored_bytes and usage.stored_bytes >= limits.stored_bytes:
            raise _storage_refusal(tenant, usage, limits.stored_bytes)
        limit = limits.audio_seconds_per_day
        wanted = estimated_seconds or 0.0
        spent = usage.audio_seconds_today
        if limit and (spent >= limit or spent + wanted > limit):
            raise _audio_refusal(tenant, usage, limit, estimated_seconds)

    def usage(self, tenant: str, limits: Limits | None = None) -> Usage:
        """``tenant``'s usage (only what ``limits`` caps is counted, when given)."""
        with self._store.reading() as s:
            now = db_now(s)
            day = day_start(now)
            stored = stored_bytes(s, tenant) if limits is None or limits.stored_bytes else 0
            seconds = (
                _audio_seconds_since(s, tenant, day)
                if limits is None or limits.audio_seconds_per_day
                else 0.0
            )
        return Usage(stored_bytes=stored, audio_seconds_today=seconds, now=now)


def _audio_seconds_since(s: Session, tenant: str, start: datetime) -> float:
    counted = case(
        (Job.status == JobStatus.SUCCEEDED.value, Job.duration_seconds),
        (Job.status.in_(IN_FLIGHT), Job.estimated_seconds),
        else_=0.0,
    )
    q = select(func.coalesce(func.sum(counted), 0.0)).where(
        Job.tenant == tenant, Job.created_at >= start
    )
    return float(s.scalar(q) or 0.0)


def _storage_refusal(tenant: str, usage: Usage, limit: int) -> StorageQuotaExceeded:
    return StorageQuotaExceeded(
        f"tenant {tenant!r} stores {usage.stored_bytes} bytes of audio, at its quota of "
        f"{limit} bytes (quotas.stored_bytes): ask the operator to raise it",
        quota=STORED_BYTES,
        tenant=tenant,
        used=usage.stored_bytes,
        limit=limit,
        resets_at=None,
    )


def _audio_refusal(
    tenant: str, usage: Usage, limit: float, estimated: float | None
) -> AudioQuotaExceeded:
    used = round(usage.audio_seconds_today, 3)
    resets = usage.resets_at
    wait = max(1, math.ceil((resets - usage.now).total_seconds()))
    this_job = f"; this job would make about {estimated:.0f} s" if estimated else ""
    return AudioQuotaExceeded(
        f"tenant {tenant!r} has used {used:g} s of its {limit:g} s of audio today (UTC){this_job}; "
        f"the quota resets at {resets:%Y-%m-%dT%H:%M:%SZ}",
        quota=AUDIO_SECONDS_PER_DAY,
        tenant=tenant,
        used=used,
        limit=limit,
        requested=None if estimated is None else round(estimated, 3),
        resets_at=resets.strftime("%Y-%m-%dT%H:%M:%SZ"),
        retry_after=wait,
    )
