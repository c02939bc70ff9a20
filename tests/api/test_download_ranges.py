"""Downloads are sent in blocks of 128 KiB (steadyvoice.api.downloads.DownloadFile): whole files,
ranges across block boundaries, several ranges, stored and converted, each one audited."""

from __future__ import annotations

import hashlib
from typing import cast

import numpy as np
from fastapi import FastAPI
from fastapi.testclient import TestClient

from steadyvoice.api.deps import Services
from steadyvoice.api.downloads import DownloadFile
from steadyvoice.audio.wav import encode_wav
from steadyvoice.jobs.store import Result
from steadyvoice.security.audit import AuditQuery

RATE = 16_000
BLOCK = DownloadFile.chunk_size


def _job(client: TestClient) -> tuple[str, bytes]:
    """A succeeded job with 20 s of audio (640 kB: five blocks), as a worker writes it."""
    resp = client.post("/v1/jobs", json={"text": "Hello there."})
    assert resp.status_code == 202, resp.text
    services = cast(Services, cast(FastAPI, client.app).state.services)
    claim = services.store.claim("test:1", 30)
    assert claim is not None
    t = np.arange(20 * RATE) / RATE
    data = encode_wav((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), RATE)
    sha, size = services.storage.write_atomic(claim.job.output_name, data)
    assert services.store.complete(claim, Result("fake-1+sr16000", RATE, 20.0, sha, size))
    return str(resp.json()["id"]), data


def test_ranges_of_a_stored_download(client: TestClient) -> None:
    job_id, data = _job(client)
    assert len(data) > 2 * BLOCK
    url = f"/v1/jobs/{job_id}/audio"
    whole = client.get(url)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["x-content-sha256"] == hashlib.sha256(data).hexdigest()
    assert whole.headers["accept-ranges"] == "bytes"
    for first, last in ((0, 0), (BLOCK - 10, BLOCK + 10), (BLOCK, 2 * BLOCK + 5)):
        part = client.get(url, headers={"Range": f"bytes={first}-{last}"})
        assert part.status_code == 206, part.text
        assert part.content == data[first : last + 1]
        assert part.headers["content-range"] == f"bytes {first}-{last}/{len(data)}"
    tail = client.get(url, headers={"Range": "bytes=-1000"})
    assert tail.status_code == 206 and tail.content == data[-1000:]
    several = client.get(url, headers={"Range": f"bytes=0-9,{BLOCK}-{BLOCK + 9}"})
    assert several.status_code == 206
    assert several.headers["content-type"].startswith("multipart/byteranges")
    assert data[:10] in several.content and data[BLOCK : BLOCK + 10] in several.content
    beyond = client.get(url, headers={"Range": f"bytes={len(data) + 1}-"})
    assert beyond.status_code == 416
    rows = client.get("/v1/audit", params={"action": "job.audio.download", "limit": 100})
    assert rows.status_code == 200, rows.text
    assert len(rows.json()["items"]) == 7  # every answer, whole, partial or refused


def test_ranges_of_a_converted_download(client: TestClient) -> None:
    job_id, _ = _job(client)
    url = f"/v1/jobs/{job_id}/audio?format=flac"
    whole = client.get(url)
    assert whole.status_code == 200 and whole.content[:4] == b"fLaC"
    assert int(whole.headers["content-length"]) == len(whole.content)
    first, last = 100, min(len(whole.content) - 1, BLOCK + 100)
    part = client.get(url, headers={"Range": f"bytes={first}-{last}"})
    assert part.status_code == 206 and part.headers["x-conversion-cache"] == "hit"
    assert part.content == whole.content[first : last + 1]
    services = cast(Services, cast(FastAPI, client.app).state.services)
    assert len(services.audit.query(AuditQuery(action="job.audio.download"))) == 2
