"""Jobs on the ``s3`` backend: the recorded SHA-256 is the object's, a stale attempt never
touches the winner's object, and an outage mid-job is retried, then fails the job with
``storage_unavailable`` while readiness says ``storage_unreachable``; all recovers after."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from factories import new_job  # type: ignore[import-not-found]
from processes import poll  # type: ignore[import-not-found]
from s3_server import S3Server, storage_settings  # type: ignore[import-not-found]
from starlette.testclient import TestClient

from steadyvoice.engines.base import Audio, SynthesisRequest
from steadyvoice.engines.fake import FakeEngine
from steadyvoice.jobs.outputs import staged_name
from steadyvoice.jobs.runner import run_claimed
from steadyvoice.jobs.store import JobStore
from steadyvoice.jobs.watch import ClaimWatch
from steadyvoice.settings import FakeSettings, Settings
from steadyvoice.storage.backend import open_storage
from steadyvoice.storage.s3 import S3Storage

pytestmark = pytest.mark.timeout(90)


class _Quieter(FakeEngine):
    """Other bytes for the same request (another host's build)."""

    def synthesize(self, request: SynthesisRequest) -> Audio:
        audio = super().synthesize(request)
        return Audio(audio.samples * np.float32(0.5), audio.sample_rate, audio.sentences)


def _store(store_factory: Callable[[str], JobStore], tmp_path: Path) -> JobStore:
    return store_factory(f"sqlite:///{tmp_path / 'jobs.db'}")


def _outputs(settings: Settings) -> S3Storage:
    storage = open_storage(settings, "outputs")
    assert isinstance(storage, S3Storage)
    return storage


def _run(store: JobStore, storage: S3Storage, engine: FakeEngine, worker: str = "w:1") -> str:
    claim = store.claim(worker, 30)
    assert claim is not None
    return run_claimed(claim, engine, store, storage)


def test_a_jobs_object_carries_the_recorded_sha256(
    aws_env: S3Server,
    settings_factory: Callable[..., Settings],
    store_factory: Callable[[str], JobStore],
    tmp_path: Path,
) -> None:
    bucket = aws_env.new_bucket()
    storage = _outputs(settings_factory(storage=storage_settings(aws_env, bucket)))
    store = _store(store_factory, tmp_path)
    job_id = store.create(new_job())[0].id
    assert _run(store, storage, FakeEngine(FakeSettings())) == "succeeded"
    job = store.get(job_id)
    key = f"sv/outputs/{job.output_name}"
    head = aws_env.client().head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ContentLength"] == job.size_bytes
    assert hashlib.sha256(b"".join(storage.chunks(job.output_name))).hexdigest() == job.sha256
    info = storage.stat(job.output_name)
    assert info is not None and info.sha256 == job.sha256, "the store's own checksum"
    listed = [o["Key"] for o in aws_env.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == [key], "the staged object went once the job was recorded"


def test_a_stale_attempt_never_replaces_the_winners_object(
    aws_env: S3Server,
    settings_factory: Callable[..., Settings],
    store_factory: Callable[[str], JobStore],
    tmp_path: Path,
) -> None:
    """A is taken for dead; B wins; A finishes later with other bytes. A's copy is fenced by
    the record (refused), so the object stays B's and A's staged object goes."""
    storage = _outputs(settings_factory(storage=storage_settings(aws_env, aws_env.new_bucket())))
    store = _store(store_factory, tmp_path)
    store.create(new_job("The job both attempts make."))
    claim_a = store.claim("host-a:1", 30)
    assert claim_a is not None
    assert store.release_worker("host-a:1", max_attempts=3).requeued == [claim_a.job.id]
    assert _run(store, storage, FakeEngine(FakeSettings()), "host-b:2") == "succeeded"
    winner = store.get(claim_a.job.id)

    blind = ClaimWatch(store, claim_a, poll_seconds=3600)
    status = run_claimed(claim_a, _Quieter(FakeSettings()), store, storage, watch=blind)
    assert status == "succeeded"  # what the job is: B's record
    assert store.get(winner.id).sha256 == winner.sha256
    info = storage.stat(winner.output_name)
    assert info is not None and info.sha256 == winner.sha256
    assert not storage.exists(staged_name(winner.output_name, claim_a.attempt))


def test_an_outage_mid_job_is_retried_then_fails_and_readiness_says_so(
    own_s3_server: S3Server,
    client_factory: Callable[..., TestClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in own_s3_server.env().items():
        monkeypatch.setenv(key, value)
    bucket = own_s3_server.new_bucket()
    # One retry, half a second per try: the outage fails the job in a few seconds.
    storage_values = storage_settings(own_s3_server, bucket, s3_timeout_seconds=0.5)
    client = client_factory(storage={**storage_values, "upload_retries": 1})
    services = client.app.state.services  # type: ignore[attr-defined]
    store, storage = services.store, services.storage
    assert isinstance(storage, S3Storage)
    engine = FakeEngine(FakeSettings())
    poll(lambda: storage.unreachable() is None, 10, "the first bucket check")

    own_s3_server.pause()
    try:
        job_id = store.create(new_job("Made while the store is away."))[0].id
        started = time.monotonic()
        assert _run(store, storage, engine) == "failed"
        took = time.monotonic() - started
        job = store.get(job_id)
        assert job.error_code == "storage_unavailable", job.error_message
        assert "2 tries" in (job.error_message or ""), "tried, then retried once"
        assert job.sha256 is None and job.output_name
        assert took >= 2 * 0.5, "each of the 2 tries waited out its timeout"

        def unready() -> list[str] | None:
            body = client.get("/readyz").json()
            hits = [r for r in body["reasons"] if r.startswith("storage_unreachable")]
            return hits or None

        poll(unready, 15, "readiness to report the store")
        assert client.get("/healthz").status_code == 200, "the API keeps answering"
    finally:
        own_s3_server.resume()

    def ready_again() -> bool:
        reasons = client.get("/readyz").json()["reasons"]
        return not any(r.startswith("storage_unreachable") for r in reasons)

    poll(ready_again, 15, "readiness to clear")
    assert storage.stat(job.output_name) is None, "no object for the failed job"
    job_id = store.create(new_job("Made once it is back."))[0].id
    assert _run(store, storage, engine) == "succeeded"
    job = store.get(job_id)
    info = storage.stat(job.output_name)
    assert info is not None and info.sha256 == job.sha256
