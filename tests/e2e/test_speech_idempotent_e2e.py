"""A streamed ``POST /v1/audio/speech`` with an ``Idempotency-Key`` whose client hangs up, against
a real ``serve``: the job is not canceled (other calls may share it), and a repeat with the same
key gets the job's whole audio, streamed while the job runs, the stored file once it is done. A
call without a key still cancels its job when its client leaves (test_openai_e2e.py).

The fake engine, slowed to about 0.6 s a sentence, keeps the job running while clients come and
go.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Generator
from typing import Any

import httpx
import pytest
from processes import Service, ServiceFactory, poll  # type: ignore[import-not-found]

pytestmark = pytest.mark.timeout(300)

TEXT = " ".join(f"Sentence number {n} is said here." for n in range(1, 13))
BODY = {"model": "tts-1", "voice": "alloy", "input": TEXT, "response_format": "pcm"}
KEY = {"Idempotency-Key": "hang-up-1"}


@pytest.fixture
def svc(start_service: ServiceFactory, service_env: Callable[..., dict[str, str]]) -> Service:
    service: Service = start_service(service_env(engine="fake", fake__seconds_per_char="0.02"))
    return service


def client(svc: Service) -> httpx.Client:
    """A connection of its own: closing it mid-stream is a client hanging up."""
    return httpx.Client(base_url=svc.url, headers=dict(svc.http.headers), timeout=60)


def stored(svc: Service, job_id: str) -> bytes:
    job = svc.wait_job(job_id)
    assert job["status"] == "succeeded", job
    audio: bytes = svc.http.get(f"/v1/jobs/{job_id}/audio").content
    assert hashlib.sha256(audio).hexdigest() == job["output"]["sha256"]
    return audio


def whole_stream(http: httpx.Client) -> tuple[str, bytes]:
    """A streamed repeat read to its end: a stream cut short raises (incomplete chunked read)."""
    with http.stream("POST", "/v1/audio/speech", json=BODY, headers=KEY) as resp:
        assert resp.status_code == 200, resp.read()
        return resp.headers["x-job-id"], b"".join(resp.iter_bytes())


def kept_on_leaving(svc: Service, job_id: str) -> dict[str, Any] | None:
    """The API's ``speech.client_gone`` line for the job, once it saw the client leave."""
    for line in svc.log().splitlines():
        if '"speech.client_gone"' in line and job_id in line:
            record: dict[str, Any] = json.loads(line)
            if record.get("job_id") == job_id:
                return record
    return None


def hang_up_after_first_audio(http: httpx.Client) -> Generator[str]:
    """Start the streamed call, yield its job id once audio arrived; leaving the ``with`` of the
    caller closes the connection mid-stream."""
    with http.stream("POST", "/v1/audio/speech", json=BODY, headers=KEY) as resp:
        assert resp.status_code == 200, resp.read()
        assert next(resp.iter_bytes())
        yield resp.headers["x-job-id"]


def test_a_client_hanging_up_leaves_the_job_for_its_repeat(svc: Service) -> None:
    with client(svc) as http:
        leaving = hang_up_after_first_audio(http)
        job_id = next(leaving)
        leaving.close()  # the connection goes mid-stream
    gone = poll(lambda: kept_on_leaving(svc, job_id), 60, "the API to see the client leave")
    assert svc.job(job_id)["status"] == "running", "not canceled: it goes on for a repeat"
    assert gone.get("kept") is True
    # A repeat while the job runs: the same job, streamed from its first chunk to its end.
    with client(svc) as http:
        again_id, streamed = whole_stream(http)
    audio = stored(svc, job_id)
    assert again_id == job_id and streamed == audio
    # A repeat once it is done: the stored file, whole.
    later = svc.http.post("/v1/audio/speech", json=BODY, headers=KEY)
    assert later.status_code == 200 and later.headers["x-job-id"] == job_id
    assert later.content == audio and later.headers["x-content-sha256"]
    assert [j["id"] for j in svc.http.get("/v1/jobs").json()["items"]] == [job_id]


def test_one_of_two_concurrent_callers_leaving_does_not_cut_the_other(svc: Service) -> None:
    with client(svc) as first_http, client(svc) as second_http:
        leaving = hang_up_after_first_audio(first_http)
        job_id = next(leaving)
        with second_http.stream("POST", "/v1/audio/speech", json=BODY, headers=KEY) as resp:
            assert resp.status_code == 200 and resp.headers["x-job-id"] == job_id
            parts = resp.iter_bytes()
            received = [next(parts)]
            leaving.close()  # the first caller goes while the second is reading
            poll(lambda: kept_on_leaving(svc, job_id), 60, "the API to see the client leave")
            assert svc.job(job_id)["status"] != "canceled"
            received += list(parts)  # to the terminating chunk: raises if it is cut
    assert b"".join(received) == stored(svc, job_id)
