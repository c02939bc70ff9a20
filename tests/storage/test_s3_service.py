"""A real ``steadyvoice serve`` on the ``s3`` backend: a voice reference and a job's output land
in the bucket under the data dir's layout, the worker clones from the reference it fetched
from the bucket, downloads (as stored, converted, the reference) match the recorded SHA-256,
and ``steadyvoice verify`` is clean."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from processes import ServiceFactory, run_cli  # type: ignore[import-not-found]
from s3_server import S3Server, storage_env  # type: ignore[import-not-found]
from speech import reference_wav  # type: ignore[import-not-found]

pytestmark = pytest.mark.timeout(180)

CONSENT = "Recorded and consented to by the speaker for steadyvoice tests, 2026-12-07."


def test_serve_on_s3_end_to_end(
    s3_server: S3Server,
    start_service: ServiceFactory,
    service_env: Callable[..., dict[str, str]],
    tmp_path: Path,
) -> None:
    bucket = s3_server.new_bucket()
    env = service_env(**storage_env(s3_server, bucket))
    env.update(s3_server.env())
    svc = start_service(env)

    voice = svc.http.post(
        "/v1/voices",
        data={"name": "Jane", "consent": CONSENT},
        files={"audio": ("clip.wav", reference_wav(), "audio/wav")},
    )
    assert voice.status_code == 201, voice.text
    vid = voice.json()["id"]
    job = svc.wait_job(svc.submit("Stored in the bucket.", voice=vid)["id"])
    assert job["status"] == "succeeded", job

    s3 = s3_server.client()
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    [output_key] = [k for k in keys if k.startswith("sv/outputs/")]
    assert output_key.endswith("/" + job["output"]["name"])
    assert any(k.startswith(f"sv/voices/{vid}/reference.") for k in keys)
    head = s3.head_object(Bucket=bucket, Key=output_key, ChecksumMode="ENABLED")
    assert base64.b64decode(head["ChecksumSHA256"]).hex() == job["output"]["sha256"]

    audio = svc.http.get(f"/v1/jobs/{job['id']}/audio")
    assert audio.status_code == 200
    assert hashlib.sha256(audio.content).hexdigest() == job["output"]["sha256"]
    converted = svc.http.get(f"/v1/jobs/{job['id']}/audio", params={"format": "flac"})
    assert converted.status_code == 200, converted.text
    assert converted.headers["x-source-sha256"] == job["output"]["sha256"]
    reference = svc.http.get(f"/v1/voices/{vid}/reference")
    assert reference.status_code == 200
    assert hashlib.sha256(reference.content).hexdigest() == voice.json()["reference"]["sha256"]
    ready = svc.http.get("/readyz").json()
    assert not [r for r in ready["reasons"] if r.startswith("storage_unreachable")]

    cli_env = {k: v for k, v in env.items() if k.startswith(("STEADYVOICE_STORAGE", "AWS_"))}
    verified = run_cli(["verify"], Path(env["STEADYVOICE_DATA_DIR"]), **cli_env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "2 ok, 0 missing, 0 corrupt, 0 unrecorded" in verified.stdout
    assert not (Path(env["STEADYVOICE_DATA_DIR"]) / "outputs").exists(), "nothing on disk"
