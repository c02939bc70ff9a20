"""The retention purge on both databases: old audio goes, rows, SHA-256 and holds stay.

Jobs are real succeeded jobs with their files in a local storage; their age is set on the row.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import new_job  # type: ignore[import-not-found]
from pydantic import ValidationError
from sqlalchemy import select, update

from steadyvoice import cli
from steadyvoice.errors import (
    HoldNotFound,
    InvalidRequest,
    JobNotFound,
    OutputPurged,
    OutputPurging,
)
from steadyvoice.jobs.models import Job, utcnow
from steadyvoice.jobs.store import JobStore, Result
from steadyvoice.jobs.usage import stored_bytes
from steadyvoice.security.audit import AuditLog, AuditQuery
from steadyvoice.settings import RetentionSettings
from steadyvoice.storage.holds import HoldKind, Holds
from steadyvoice.storage.local import LocalStorage
from steadyvoice.storage.retention import PURGE_ACTION, purge_outputs
from steadyvoice.storage.verify import verify_outputs

pytestmark = pytest.mark.timeout(120)

DAY = timedelta(days=1)


def _succeeded(store: JobStore, storage: LocalStorage, tenant: str, age_days: float) -> Job:
    """A succeeded job of ``tenant`` with its audio on disk, created ``age_days`` ago."""
    job, _ = store.create(new_job(f"Job of {tenant}, {age_days} days old.", tenant=tenant))
    claim = store.claim("test:1", 60)
    assert claim is not None and claim.job.id == job.id
    data = f"audio of {job.id}".encode() * 10
    result = Result("fake-1", 16_000, 1.0, hashlib.sha256(data).hexdigest(), len(data))

    def publish() -> None:
        storage.write_atomic(job.output_name, data)

    assert store.complete(claim, result, publish)
    with store.session() as s:
        s.execute(update(Job).where(Job.id == job.id).values(created_at=utcnow() - age_days * DAY))
    return store.get(job.id)


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "outputs")


def _purged_ids(store: JobStore) -> set[str]:
    with store.reading() as s:
        return set(s.scalars(select(Job.id).where(Job.purged_at.is_not(None))))


def test_purge_deletes_old_audio_keeps_rows_and_holds(
    store: JobStore, storage: LocalStorage
) -> None:
    old = _succeeded(store, storage, "acme", 40)
    held = _succeeded(store, storage, "acme", 40)
    young = _succeeded(store, storage, "acme", 5)
    frozen = _succeeded(store, storage, "bank", 400)  # the whole tenant is held
    kept = _succeeded(store, storage, "archive", 4000)  # tenant override: 0, forever
    brief = _succeeded(store, storage, "brief", 2)  # tenant override: 1 day
    holds = Holds(store)
    holds.place(HoldKind.JOB, held.id, "case 17", by="key_admin")
    holds.place(HoldKind.TENANT, "bank", "regulator request", by="key_admin")
    before = {t: _usage(store, t) for t in ("acme", "brief")}
    settings = RetentionSettings(
        outputs_days=30, tenants={"archive": {"outputs_days": 0}, "brief": {"outputs_days": 1}}
    )

    purged = purge_outputs(store, storage, settings, batch=1)  # batches of one: loops too

    assert (purged.jobs, dict(purged.by_tenant)) == (2, {"acme": 1, "brief": 1})
    assert _purged_ids(store) == {old.id, brief.id}
    for job in (old, brief):
        row = store.get(job.id)
        assert row.status == "succeeded" and row.sha256 == job.sha256  # the record stays
        assert row.text == job.text and row.requester == job.requester
        assert not storage.exists(job.output_name)
        with pytest.raises(OutputPurged):
            holds.place(HoldKind.JOB, job.id, "too late", by="key_admin")
    for job in (held, young, frozen, kept):
        assert storage.exists(job.output_name) and store.get(job.id).purged_at is None
    assert purged.bytes == old.size_bytes + brief.size_bytes  # type: ignore[operator]
    assert _usage(store, "acme") == before["acme"] - old.size_bytes  # type: ignore[operator]
    assert _usage(store, "brief") == 0
    report = verify_outputs(store, storage)  # purged audio is not missing audio
    assert report.healthy and report.missing == [] and report.ok == 4, report

    events = AuditLog(store).query(AuditQuery(action=PURGE_ACTION))
    assert sorted((e.object_id, e.tenant) for e in events) == sorted(
        [(old.id, "acme"), (brief.id, "brief")]
    )

    # A second round finds nothing; lifting the holds lets the next one take them.
    assert purge_outputs(store, storage, settings).jobs == 0
    holds.lift(HoldKind.JOB, held.id)
    holds.lift(HoldKind.TENANT, "bank")
    assert purge_outputs(store, storage, settings).jobs == 2
    assert _purged_ids(store) == {old.id, brief.id, held.id, frozen.id}
    assert _usage(store, "bank") == 0


def test_keep_forever_by_default(store: JobStore, storage: LocalStorage) -> None:
    job = _succeeded(store, storage, "acme", 10_000)
    assert purge_outputs(store, storage, RetentionSettings()).jobs == 0
    assert storage.exists(job.output_name)


def test_a_missing_file_is_no_error_and_is_stamped(store: JobStore, storage: LocalStorage) -> None:
    """The state a crash between the deletes and the commit leaves: the next round finishes."""
    job = _succeeded(store, storage, "acme", 40)
    storage.delete(job.output_name)
    assert purge_outputs(store, storage, RetentionSettings(outputs_days=30)).jobs == 1
    assert store.get(job.id).purged_at is not None


def test_a_failed_delete_stamps_nothing_and_releases_the_claim(
    store: JobStore, storage: LocalStorage
) -> None:
    job = _succeeded(store, storage, "acme", 40)

    class Down(LocalStorage):
        def delete(self, name: str, *, retries: int | None = None) -> None:
            raise OSError("the store is down")

    assert purge_outputs(store, Down(storage.root), RetentionSettings(outputs_days=30)).jobs == 0
    after = store.get(job.id)
    assert after.purged_at is None and after.purge_started_at is None
    assert storage.exists(job.output_name)
    assert not AuditLog(store).query(AuditQuery(action=PURGE_ACTION))
    Holds(store).place(HoldKind.JOB, job.id, "case 5", by="key_admin")  # not being purged now


def test_deletes_run_outside_the_write_lock_and_holds_wait_for_them(
    store: JobStore, storage: LocalStorage
) -> None:
    """A store whose delete hangs (an S3 that stopped answering) must not hold the database's
    write lock: another writer goes on at once. A hold on the job being deleted is refused,
    and answers ``output_purged`` once the round is through."""
    job = _succeeded(store, storage, "acme", 40)
    other = _succeeded(store, storage, "bank", 1)
    entered, release = threading.Event(), threading.Event()

    class Hanging(LocalStorage):
        def delete(self, name: str, *, retries: int | None = None) -> None:
            entered.set()
            assert release.wait(30)
            super().delete(name)

    done: list[int] = []
    purge = threading.Thread(
        target=lambda: done.append(
            purge_outputs(store, Hanging(storage.root), RetentionSettings(outputs_days=30)).jobs
        )
    )
    purge.start()
    try:
        assert entered.wait(20)
        started = time.monotonic()
        Holds(store).place(HoldKind.JOB, other.id, "case 6", by="key_admin")  # a write
        store.create(new_job("Queued while the purge deletes.", tenant="acme"))
        assert time.monotonic() - started < 5, "a writer waited for the purge's delete"
        for kind, subject in ((HoldKind.JOB, job.id), (HoldKind.TENANT, "acme")):
            with pytest.raises(OutputPurging):
                Holds(store).place(kind, subject, "too late", by="key_admin")
    finally:
        release.set()
        purge.join(30)
    assert done == [1] and store.get(job.id).purged_at is not None
    with pytest.raises(OutputPurged):
        Holds(store).place(HoldKind.JOB, job.id, "too late", by="key_admin")
    Holds(store).place(HoldKind.TENANT, "acme", "from now on", by="key_admin")


def test_holds_are_checked_and_listed(store: JobStore, storage: LocalStorage) -> None:
    job = _succeeded(store, storage, "acme", 1)
    holds = Holds(store)
    first = holds.place(HoldKind.JOB, job.id, "case 1", by="key_a")
    again = holds.place(HoldKind.JOB, job.id, "case 2", by="key_b")
    assert (again.reason, again.placed_by) == (first.reason, first.placed_by) == ("case 1", "key_a")
    holds.place(HoldKind.TENANT, "acme", "case 3", by="key_a")
    assert [(h.kind, h.subject) for h in holds.list()] == [("job", job.id), ("tenant", "acme")]
    assert [h.subject for h in holds.list(HoldKind.TENANT)] == ["acme"]
    with pytest.raises(JobNotFound):
        holds.place(HoldKind.JOB, "0" * 32, "case", by="key_a")
    with pytest.raises(InvalidRequest):
        holds.place(HoldKind.TENANT, "Not A Tenant", "case", by="key_a")
    with pytest.raises(InvalidRequest):
        holds.place(HoldKind.TENANT, "acme", "  ", by="key_a")
    with pytest.raises(HoldNotFound):
        holds.lift(HoldKind.TENANT, "other")


def _usage(store: JobStore, tenant: str) -> int:
    with store.reading() as s:
        return stored_bytes(s, tenant)


def test_the_cli_holds_releases_purges_and_audits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    store = JobStore.from_url(f"sqlite:///{data / 'steadyvoice.db'}", data)
    store.migrate()
    storage = LocalStorage(data / "outputs")
    held, old = _succeeded(store, storage, "acme", 40), _succeeded(store, storage, "acme", 40)
    monkeypatch.setenv("STEADYVOICE_DATA_DIR", str(data))
    monkeypatch.setenv("STEADYVOICE_RETENTION__OUTPUTS_DAYS", "30")

    def run(*args: str) -> list[dict[str, Any]]:
        assert cli.main(list(args)) == 0, capsys.readouterr().err
        return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    placed = run("retention", "hold", "--job", held.id, "--reason", "case 9")
    assert placed[0]["subject"] == held.id and placed[0]["placed_by"].startswith("cli:")
    run("retention", "hold", "--tenant", "other", "--reason", "case 10")
    assert [h["subject"] for h in run("retention", "holds", "--kind", "job")] == [held.id]
    assert run("retention", "purge") == [
        {"jobs": 1, "bytes": old.size_bytes, "tenants": {"acme": 1}}
    ]
    assert not storage.exists(old.output_name) and storage.exists(held.output_name)
    run("retention", "release", "--job", held.id)
    assert run("retention", "purge")[0]["jobs"] == 1
    assert cli.main(["retention", "release", "--job", held.id]) != 0
    assert "hold_not_found" in capsys.readouterr().err

    log = AuditLog(store)
    placed_rows = log.query(AuditQuery(action="hold.place"))
    assert sorted((e.object_id, e.method) for e in placed_rows) == sorted(
        [(held.id, "CLI"), ("other", "CLI")]
    )
    assert [e.object_id for e in log.query(AuditQuery(action="hold.lift"))] == [held.id]
    store.engine.dispose()


def test_retention_settings_per_tenant() -> None:
    settings = RetentionSettings(
        outputs_days=90, tenants={"acme": {"outputs_days": 365}, "bank": {"outputs_days": 0}}
    )
    assert [settings.outputs_days_for(t) for t in ("acme", "bank", "other")] == [365, 0, 90]
    assert RetentionSettings(tenants={"acme": {}}).outputs_days_for("acme") == 0  # the default
    with pytest.raises(ValidationError, match="not a tenant name"):
        RetentionSettings(tenants={"Not A Tenant": {"outputs_days": 1}})
    with pytest.raises(ValidationError):
        RetentionSettings(outputs_days=-1)
