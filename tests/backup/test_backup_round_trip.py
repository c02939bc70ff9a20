"""``backup create`` while a real ``serve`` runs jobs, then ``backup restore`` into empty
targets and a service on them: SQLite with local storage to a local folder, and PostgreSQL with
S3 storage to an ``s3://`` destination (the moto server).

Afterwards the service starts, ``verify`` is clean, every job's audio downloads with its
recorded SHA-256, the audit rows are those of the source, keys work and a voice profile speaks
exactly as it did.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pg_databases import fresh_pg_database  # type: ignore[import-not-found]
from processes import ServiceFactory, admin_key, poll  # type: ignore[import-not-found]
from s3_server import REGION, S3Server  # type: ignore[import-not-found]
from speech import reference_wav  # type: ignore[import-not-found]
from sqlalchemy import select

from steadyvoice.cli import main
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.store import JobStore
from steadyvoice.security.models import AuditEvent

pytestmark = pytest.mark.timeout(150)

CONSENT = "I, the speaker, agree that this recording may be used to make my voice."
# About 0.8 s a job on the fake engine: the first backup runs while most are still queued.
TEXT = "Backups run while the service serves job number {}."
JOBS = 6


@pytest.fixture
def second_pg_url() -> Iterator[str]:
    """A second empty database on the test server: the restore target."""
    with fresh_pg_database() as url:
        yield url


def _target(kind: str, data_dir: Path, s3_server: S3Server, pg: str) -> dict[str, str]:
    """The settings (as ``service_env`` values) of one service's database and storage."""
    values = {
        "fake__seconds_per_char": "0.015",
        "metrics_dir": str(data_dir.parent / f"metrics-{data_dir.name}"),
    }
    if kind == "postgresql":
        values["database_url"] = pg
        values |= {
            "storage__backend": "s3",
            "storage__s3_bucket": s3_server.new_bucket(),
            "storage__s3_prefix": "sv",
            "storage__s3_endpoint_url": s3_server.url,
            "storage__s3_region": REGION,
        }
    return values


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., Ran]:
    """Run a ``steadyvoice`` command in this process (a second or two less than a process
    each) with the settings of ``env``, as the service has them."""

    def run(args: list[str], env: dict[str, str]) -> Ran:
        with monkeypatch.context() as patch:
            for key in [k for k in os.environ if k.startswith("STEADYVOICE_")]:
                patch.delenv(key)
            for key, value in env.items():
                if key.startswith(("STEADYVOICE_", "AWS_")):
                    patch.setenv(key, value)
            capsys.readouterr()
            status = main(args)
            out, err = capsys.readouterr()
        return Ran(status, out, err)

    return run


def _audit_rows(url: str, lock_dir: Path) -> list[tuple[Any, ...]]:
    store = JobStore.from_url(url, lock_dir)
    try:
        with store.reading() as s:
            rows = s.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().all()
            cols = [c.key for c in AuditEvent.__table__.columns]
            return [tuple(getattr(r, c) for c in cols) for r in rows]
    finally:
        store.engine.dispose()


def _succeeded(url: str, lock_dir: Path) -> dict[str, str]:
    store = JobStore.from_url(url, lock_dir)
    try:
        with store.reading() as s:
            q = select(Job.id, Job.sha256).where(Job.status == "succeeded")
            return {str(i): str(sha) for i, sha in s.execute(q)}
    finally:
        store.engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_backup_while_serving_then_restore_into_empty_targets(
    kind: str,
    tmp_path: Path,
    start_service: ServiceFactory,
    service_env: Callable[..., dict[str, str]],
    s3_server: S3Server,
    cli: Callable[..., Ran],
    request: pytest.FixtureRequest,
) -> None:
    aws = s3_server.env()
    # PostgreSQL databases only where they are used: the source and the restore target.
    pg_url = second_pg_url = ""
    if kind == "postgresql":
        pg_url, second_pg_url = (request.getfixturevalue(n) for n in ("pg_url", "second_pg_url"))
    if kind == "sqlite":
        dest = str(tmp_path / "backups")
    else:
        dest = f"s3://{s3_server.new_bucket()}/nightly"
        aws["STEADYVOICE_BACKUP__S3_ENDPOINT_URL"] = s3_server.url
    env_a = service_env(tmp_path / "a", **_target(kind, tmp_path / "a", s3_server, pg_url))
    env_a |= aws
    svc = start_service(env_a)
    operator = svc.http.post("/v1/keys", json={"role": "operator", "tenant": "acme"})
    assert operator.status_code == 201, operator.text
    as_operator = {"Authorization": f"Bearer {operator.json()['key']}"}
    voice = svc.http.post(
        "/v1/voices",
        data={"name": "Speaker", "consent": CONSENT},
        files={"audio": ("clip.wav", reference_wav(), "audio/wav")},
        headers=as_operator,
    )
    assert voice.status_code == 201, voice.text
    voice_id = voice.json()["id"]

    ids = [
        svc.submit(TEXT.format(i), voice=voice_id if i == 0 else None)["id"] for i in range(JOBS)
    ]
    poll(lambda: svc.job(ids[0])["status"] == "succeeded", 60, "the first job")
    first = cli(["backup", "create", dest], env_a)  # jobs still queued and running
    assert first.returncode == 0, first.stderr
    first_report = json.loads(first.stdout)
    jobs = {job_id: svc.wait_job(job_id) for job_id in ids}
    assert all(job["status"] == "succeeded" for job in jobs.values())
    second = cli(["backup", "create", dest], env_a)
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    # Incremental: only what the first backup lacked is copied.
    assert report["present"] == first_report["copied"] + first_report["present"]
    assert report["files"] == JOBS + 1 == report["present"] + report["copied"]
    assert cli(["backup", "verify", dest], env_a).returncode == 0
    url_a = env_a.get("STEADYVOICE_DATABASE_URL", f"sqlite:///{tmp_path / 'a' / 'steadyvoice.db'}")
    audit_a = _audit_rows(url_a, tmp_path / "a")
    recorded = _succeeded(url_a, tmp_path / "a")

    env_b = service_env(tmp_path / "b", **_target(kind, tmp_path / "b", s3_server, second_pg_url))
    env_b |= aws
    restored = cli(["backup", "restore", dest], env_b)
    assert restored.returncode == 0, restored.stderr
    again = cli(["backup", "restore", dest], env_b)
    assert again.returncode == 2 and "restore_target_not_empty" in again.stderr

    url_b = env_b.get("STEADYVOICE_DATABASE_URL", f"sqlite:///{tmp_path / 'b' / 'steadyvoice.db'}")
    audit_b = _audit_rows(url_b, tmp_path / "b")
    assert audit_b and audit_b == audit_a[: len(audit_b)]
    assert _succeeded(url_b, tmp_path / "b") == recorded
    checked = cli(["verify", "--json"], env_b)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    svc.stop()  # frees the CPU; the source is not needed any more
    svc_b = start_service(env_b, ready=False)  # downloads need no worker: check them meanwhile
    assert admin_key(tmp_path / "b") is None  # keys came back; no new first-start key
    svc_b.use_key(admin_key(tmp_path / "a"))
    for job_id, sha256 in recorded.items():
        body = svc_b.http.get(f"/v1/jobs/{job_id}/audio").content
        assert hashlib.sha256(body).hexdigest() == sha256
    assert svc_b.http.get(f"/v1/voices/{voice_id}", headers=as_operator).status_code == 200
    svc_b.wait_ready()
    repeat = svc_b.http.post(
        "/v1/jobs", json={"text": TEXT.format(0), "voice": voice_id}, headers=as_operator
    )
    assert repeat.status_code == 202, repeat.text
    done = svc_b.wait_job(repeat.json()["id"])
    assert done["output"]["sha256"] == recorded[ids[0]]
