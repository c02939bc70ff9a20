"""Per-tenant quotas on SQLite and PostgreSQL: stored bytes, audio seconds per UTC day (with the
estimate of accepted jobs), per-tenant overrides, and other tenants unaffected."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from factories import RESULT, new_job  # type: ignore[import-not-found]
from sqlalchemy import text, update

from steadyvoice.errors import AudioQuotaExceeded, StorageQuotaExceeded
from steadyvoice.jobs.database import alembic_config
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.quotas import Quotas, day_start, limits_for
from steadyvoice.jobs.store import JobStore
from steadyvoice.settings import QuotaSettings


def _job(store: JobStore, tenant: str, **row: Any) -> str:
    """A job of ``tenant`` whose row then holds ``row`` (status, sizes, created_at...)."""
    estimated = row.pop("estimated_seconds", None)
    job, _ = store.create(new_job(tenant=tenant, estimated_seconds=estimated))
    if row:
        with store.session() as s:
            s.execute(update(Job).where(Job.id == job.id).values(**row))
    return job.id


def _succeeded(store: JobStore, tenant: str, size: int = 0, seconds: float = 0.0) -> str:
    """A job of ``tenant`` run to success by the store, as a worker records it."""
    job, _ = store.create(new_job(tenant=tenant))
    claim = store.claim("host:1", 30)
    assert claim is not None and claim.job.id == job.id, "no other job may be queued"
    result = replace(RESULT, size_bytes=size, duration_seconds=seconds)
    assert store.complete(claim, result)
    return job.id


def test_limits_are_the_tenants_own_or_the_defaults() -> None:
    settings = QuotaSettings(
        stored_bytes=1_000,
        audio_seconds_per_day=60,
        tenants={"big": {"audio_seconds_per_day": 3_600}, "free": {"stored_bytes": 0}},
    )
    limits = limits_for(settings, "other")
    assert (limits.stored_bytes, limits.audio_seconds_per_day) == (1_000, 60)
    big = limits_for(settings, "big")
    assert (big.stored_bytes, big.audio_seconds_per_day) == (1_000, 3_600)
    free = limits_for(settings, "free")
    assert (free.stored_bytes, free.audio_seconds_per_day) == (0, 60)


def test_tenant_names_in_the_overrides_are_checked() -> None:
    with pytest.raises(ValueError, match="not a tenant name: 'Big Co'"):
        QuotaSettings(tenants={"Big Co": {"stored_bytes": 1}})


def test_stored_bytes_refuse_at_the_quota(store: JobStore) -> None:
    quotas = Quotas(QuotaSettings(stored_bytes=1_000), store)
    _succeeded(store, "acme", size=600)
    _job(store, "acme", status="failed", size_bytes=10_000)  # stores nothing
    _succeeded(store, "other", size=5_000)
    _job(store, "acme")  # queued: its size is not known yet
    quotas.check("acme", None)
    with store.session() as s:
        s.execute(update(Job).where(Job.tenant == "acme").values(status="canceled"))
    _succeeded(store, "acme", size=400)
    with pytest.raises(StorageQuotaExceeded) as caught:
        quotas.check("acme", 1.0)
    err = caught.value
    assert (err.code, err.status) == ("storage_quota_exceeded", 403)
    assert err.details == {
        "quota": "stored_bytes",
        "tenant": "acme",
        "used": 1_000,
        "limit": 1_000,
        "resets_at": None,
    }
    assert "stores 1000 bytes of audio, at its quota of 1000 bytes" in err.message
    quotas.check("third", None)  # another tenant is not affected
    with pytest.raises(StorageQuotaExceeded) as caught:
        quotas.check("other", None)  # and each tenant counts its own
    assert caught.value.details["used"] == 5_000


def test_audio_seconds_today_count_estimates_until_made(store: JobStore) -> None:
    quotas = Quotas(QuotaSettings(audio_seconds_per_day=100), store)
    _succeeded(store, "acme", seconds=50)  # made: its real duration
    _job(store, "acme", estimated_seconds=30)  # queued: its estimate
    _job(store, "acme", status="running", estimated_seconds=10)
    _job(store, "acme", status="failed", estimated_seconds=500, duration_seconds=500)
    _job(store, "acme", status="canceled", estimated_seconds=500)
    assert quotas.usage("acme").audio_seconds_today == pytest.approx(90)
    quotas.check("acme", 10)  # exactly to the quota
    with pytest.raises(AudioQuotaExceeded) as caught:
        quotas.check("acme", 10.5)
    err = caught.value
    assert (err.code, err.status) == ("audio_quota_exceeded", 429)
    assert (err.details["used"], err.details["limit"], err.details["requested"]) == (90, 100, 10.5)
    assert err.details["quota"] == "audio_seconds_per_day" and err.details["tenant"] == "acme"
    quotas.check("other", 99)


def test_the_day_is_the_utc_day_on_the_databases_clock(store: JobStore) -> None:
    quotas = Quotas(QuotaSettings(audio_seconds_per_day=100), store)
    usage = quotas.usage("acme")
    today = day_start(usage.now)
    _job(
        store,
        "acme",
        status="succeeded",
        duration_seconds=1_000,
        created_at=today - timedelta(microseconds=1),  # yesterday, just
    )
    _job(store, "acme", estimated_seconds=100, created_at=today)
    assert quotas.usage("acme").audio_seconds_today == pytest.approx(100)
    with pytest.raises(AudioQuotaExceeded) as caught:
        quotas.check("acme", None)  # spent: even a job without an estimate is refused
    err = caught.value
    tomorrow = today + timedelta(days=1)
    assert err.details["resets_at"] == tomorrow.strftime("%Y-%m-%dT%H:%M:%SZ")
    wait = (tomorrow - datetime.now(UTC)).total_seconds()
    assert abs(err.details["retry_after"] - wait) <= 5
    assert f"resets at {err.details['resets_at']}" in err.message


def test_no_quota_costs_no_query() -> None:
    class NoStore:
        def reading(self) -> None:
            raise AssertionError("a tenant without quotas must not be looked up")

    quotas = Quotas(QuotaSettings(tenants={"acme": {"stored_bytes": 0}}), NoStore())  # type: ignore[arg-type]
    quotas.check("acme", 1e6)
    quotas.check("other", None)


def test_a_tenant_override_lifts_or_tightens_the_default(store: JobStore) -> None:
    settings = QuotaSettings(
        audio_seconds_per_day=10, tenants={"big": {"audio_seconds_per_day": 0}, "tiny": {}}
    )
    quotas = Quotas(settings, store)
    for tenant in ("big", "tiny", "plain"):
        _succeeded(store, tenant, seconds=10)
    quotas.check("big", 1_000)  # 0: no quota for this tenant
    for tenant in ("tiny", "plain"):  # an empty override is the default
        with pytest.raises(AudioQuotaExceeded):
            quotas.check(tenant, None)


def test_a_lost_claim_adds_nothing_to_the_stored_total(store: JobStore) -> None:
    job, _ = store.create(new_job(tenant="acme"))
    first = store.claim("host:1", 30)
    assert first is not None
    with store.session() as s:  # taken back and claimed again meanwhile
        s.execute(update(Job).where(Job.id == job.id).values(attempts=2))
    assert not store.complete(first, replace(RESULT, size_bytes=1_000))
    assert Quotas(QuotaSettings(), store).usage("acme").stored_bytes == 0


def test_the_migration_totals_the_outputs_stored_before_it(db_url: str, tmp_path: Path) -> None:
    store = JobStore.from_url(db_url, tmp_path)
    try:
        with store.engine.connect() as conn:
            command.upgrade(alembic_config(conn), "0007")
            conn.commit()
        rows = [("a", "succeeded", 100), ("a", "succeeded", 20), ("a", "failed", None),
                ("b", "succeeded", 7), ("c", "queued", None)]  # fmt: skip
        with store.engine.begin() as conn:
            for n, (tenant, status, size) in enumerate(rows):
                conn.execute(
                    text(
                        "INSERT INTO jobs (id, status, text, voice, engine, params, requester,"
                        " tenant, request_hash, created_at, deadline_at, attempts, output_name,"
                        " size_bytes) VALUES (:id, :status, 'x', 'alpha', 'fake', '{}', 'k',"
                        " :tenant, 'h', :at, :at, 1, 'o', :size)"
                    ),
                    {"id": f"{n:032x}", "status": status, "tenant": tenant, "size": size,
                     "at": datetime(2026, 1, 1)},
                )  # fmt: skip
        store.migrate()
        usage = Quotas(QuotaSettings(), store).usage
        assert [usage(t).stored_bytes for t in "abc"] == [120, 7, 0]
    finally:
        store.engine.dispose()
