"""Downloads on the ``s3`` backend, through the API: streamed a chunk at a time, or (with
``storage.presign``) a 307 to a presigned URL; audited either way; 410 once the object is gone."""

from __future__ import annotations

import hashlib
import io
import wave
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from factories import new_job  # type: ignore[import-not-found]
from s3_server import S3Server, storage_settings  # type: ignore[import-not-found]
from starlette.testclient import TestClient

from steadyvoice.jobs.store import Result
from steadyvoice.storage.s3 import S3Storage

pytestmark = pytest.mark.timeout(60)

# Three and a half megabytes: several chunks of the backend's 1 MiB reads.
BIG = b"RIFF" + bytes(range(256)) * (14 * 1024)


def _succeeded(client: TestClient, data: bytes) -> tuple[str, str]:
    """A succeeded job whose output is ``data``, written through the app's own backend."""
    services = client.app.state.services  # type: ignore[attr-defined]
    store, storage = services.store, services.storage
    assert isinstance(storage, S3Storage)
    job, _ = store.create(new_job())
    claim = store.claim("w:1", 30)
    assert claim is not None and claim.job.id == job.id
    sha, size = storage.put(job.output_name, data)
    assert store.complete(claim, Result("fake-1+sr16000", 16_000, 1.0, sha, size))
    return job.id, sha


def _client(
    client_factory: Callable[..., TestClient], server: S3Server, **storage: Any
) -> TestClient:
    return client_factory(storage=storage_settings(server, server.new_bucket(), **storage))


def _audit_actions(client: TestClient) -> list[tuple[str, int]]:
    rows = client.get("/v1/audit", params={"limit": 100}).json()["items"]
    return [(r["action"], r["status"]) for r in rows if r["action"] == "job.audio.download"]


def test_a_download_streams_the_object_in_chunks(
    aws_env: S3Server, client_factory: Callable[..., TestClient]
) -> None:
    client = _client(client_factory, aws_env)
    job_id, sha = _succeeded(client, BIG)
    with client.stream("GET", f"/v1/jobs/{job_id}/audio") as resp:
        assert resp.status_code == 200
        assert resp.headers["x-content-sha256"] == sha
        assert resp.headers["content-length"] == str(len(BIG))
        assert "attachment" in resp.headers["content-disposition"]
        pieces = list(resp.iter_raw())
    assert len(pieces) >= 3, "sent as it was read, a chunk at a time"
    assert hashlib.sha256(b"".join(pieces)).hexdigest() == sha
    assert _audit_actions(client) == [("job.audio.download", 200)]

    services = client.app.state.services  # type: ignore[attr-defined]
    services.storage.delete(services.store.get(job_id).output_name)
    gone = client.get(f"/v1/jobs/{job_id}/audio")
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "output_missing"


def test_with_presign_a_download_redirects_to_a_short_lived_url(
    aws_env: S3Server, client_factory: Callable[..., TestClient]
) -> None:
    client = _client(client_factory, aws_env, presign=True, presign_seconds=60)
    job_id, sha = _succeeded(client, b"RIFF small output")
    resp = client.get(f"/v1/jobs/{job_id}/audio", follow_redirects=False)
    assert resp.status_code == 307
    assert resp.headers["x-content-sha256"] == sha
    url = resp.headers["location"]
    assert url.startswith(f"{aws_env.url}/") and "Signature=" in url and "Expires=" in url
    fetched = httpx.get(url)  # no credentials: the signature is the permission
    assert fetched.status_code == 200
    assert hashlib.sha256(fetched.content).hexdigest() == sha
    assert _audit_actions(client) == [("job.audio.download", 307)], "audited all the same"


def _wav(seconds: float = 0.5, rate: int = 16_000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(range(256)) * int(seconds * rate * 2 / 256))
    return out.getvalue()


def test_a_conversion_hit_or_a_busy_answer_downloads_nothing(
    own_s3_server: S3Server,
    client_factory: Callable[..., TestClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cache and the conversion slots come before the download: with the store away, a
    cached conversion is still served and a full pool still answers 503 ``busy`` at once."""
    for key, value in own_s3_server.env().items():
        monkeypatch.setenv(key, value)
    client = client_factory(
        storage=storage_settings(own_s3_server, own_s3_server.new_bucket()),
        conversion={"workers": 1, "queue": 0},
    )
    job_id, _ = _succeeded(client, _wav())
    url = f"/v1/jobs/{job_id}/audio?format=flac"
    first = client.get(url)
    assert first.status_code == 200 and first.headers["x-conversion-cache"] == "miss"
    conversions = client.app.state.services.conversions  # type: ignore[attr-defined]
    other_id, _ = _succeeded(client, _wav(0.25))
    own_s3_server.pause()
    try:
        hit = client.get(url)
        assert hit.status_code == 200 and hit.headers["x-conversion-cache"] == "hit"
        assert hit.content == first.content
        conversions._admitted = conversions.workers + conversions.queue  # the pool is full
        busy = client.get(f"/v1/jobs/{other_id}/audio?format=flac")
        assert busy.status_code == 503 and busy.json()["error"]["code"] == "busy"
    finally:
        conversions._admitted = 0
        own_s3_server.resume()
