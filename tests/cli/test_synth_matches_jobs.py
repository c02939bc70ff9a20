"""``steadyvoice synth`` gives the very bytes a job gives for the same request and settings.

A real service runs the jobs (Piper, the default engine); ``synth`` runs with the same
environment beside it: the same normalization, voice profile and encoder, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from processes import ServiceFactory, run_cli  # type: ignore[import-not-found]
from speech import encode, other_speaker  # type: ignore[import-not-found]

CONSENT = "Recorded and consented to by the speaker for steadyvoice tests, 2026-11-25."
TEXT = "It costs $5 on 3 May."  # normalized: "five dollars on the third of May"


@pytest.mark.timeout(400)
def test_synth_gives_a_jobs_bytes(
    start_service: ServiceFactory,
    service_env: Callable[..., dict[str, str]],
    tmp_path: Path,
) -> None:
    env = service_env(engine="piper")
    svc = start_service(env)
    created = svc.http.post(
        "/v1/voices",
        data={"name": "Other", "consent": CONSENT},
        files={"audio": ("ref", encode(*other_speaker(), "FLAC"), "application/octet-stream")},
    )
    assert created.status_code == 201, created.text
    profile = created.json()["id"]
    requests: list[dict[str, Any]] = [
        {"seed": 7, "format": "mp3"},
        {"seed": 3, "format": "wav", "speed": 1.25, "voice": "joe"},
        {"seed": 11, "format": "flac", "voice": profile},
    ]
    jobs = [svc.submit(TEXT, **fields)["id"] for fields in requests]
    for fields, job_id in zip(requests, jobs, strict=True):
        job = svc.wait_job(job_id, timeout=180)
        assert job["status"] == "succeeded", job
        assert job["spoken_text"] == "It costs five dollars on the third of May."
        audio = svc.http.get(f"/v1/jobs/{job_id}/audio").content

        target = tmp_path / f"synth-{job['params']['seed']}.{fields['format']}"
        args = ["synth", TEXT, "-o", str(target), "--seed", str(fields["seed"])]
        for name in ("voice", "speed"):
            if name in fields:
                args += [f"--{name}", str(fields[name])]
        out = run_cli(args, Path(env["STEADYVOICE_DATA_DIR"]), **env)
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout)

        assert target.read_bytes() == audio, fields
        assert report["sha256"] == job["output"]["sha256"] == hashlib.sha256(audio).hexdigest()
        assert report["params"] == job["params"]
        assert report["engine_version"] == job["engine_version"]
        assert report["spoken_text"] == job["spoken_text"]
        uses = out.stderr.splitlines()[0]
        if fields.get("voice") == profile:  # read from the service's database
            assert uses.startswith("steadyvoice: using database sqlite:///"), out.stderr
        else:
            assert uses == "steadyvoice: using no database (only a voice profile needs one)"
