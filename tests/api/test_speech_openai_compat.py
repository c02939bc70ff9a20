"""``POST /v1/audio/speech`` as OpenAI's clients expect it: 24 kHz ``pcm`` (resampled, recorded,
deterministic, streamed too) and unknown fields ignored but named, in process with the fake
engine (16 kHz) and the test's stand-in worker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from http_checks import error_of  # type: ignore[import-not-found]
from speech_calls import (  # type: ignore[import-not-found]
    LONG,
    PCM_RATE,
    RATE,
    Worker,
    job_of,
    speech,
)

from steadyvoice.audio.formats import decode, encode

pytestmark = pytest.mark.timeout(60)

IGNORED = "x-steadyvoice-ignored-fields"


def call(client: TestClient, worker: Worker, body: dict[str, Any]) -> tuple[Any, bytes]:
    """One speech call run by ``worker``: the answer and all its bytes (streamed or not)."""
    ran = worker.later(worker.run)
    with client.stream("POST", "/v1/audio/speech", json=body) as resp:
        data = b"".join(resp.iter_bytes())
    assert resp.status_code == 200, data
    assert ran.result() == "succeeded"
    return resp, data


# --- pcm at 24 kHz ----------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_pcm_is_24_khz_recorded_and_repeatable(
    client_factory: Callable[..., TestClient],
    worker_for: Callable[[TestClient], Worker],
    stream: bool,
) -> None:
    client = client_factory(fake={"seconds_per_char": 0.001})
    worker = worker_for(client)
    body = speech(input=LONG, response_format="pcm", seed=3, stream=stream)
    resp, audio = call(client, worker, body)
    _, again = call(client, worker, body)
    assert audio == again, "same request, same bytes"
    assert resp.headers["x-sample-rate"] == str(PCM_RATE)
    job = job_of(client, resp)
    assert job["params"]["output_rate"] == PCM_RATE
    assert job["output"]["sample_rate"] == PCM_RATE
    stored = client.get(f"/v1/jobs/{job['id']}/audio").content
    assert audio == stored, "the answer is the stored file"
    # The engine's audio, resampled (soxr) from its 16 kHz: the same length in seconds.
    samples, _ = decode(audio, "pcm", sample_rate=PCM_RATE)
    assert len(samples) == round(job["output"]["duration_seconds"] * PCM_RATE)
    as_wav = client.get(f"/v1/jobs/{job['id']}/audio", params={"format": "wav"}).content
    wav, wav_rate = decode(as_wav, "wav")
    assert wav_rate == PCM_RATE and np.array_equal(wav, samples)


def test_streamed_and_whole_pcm_are_the_same_bytes(
    client: TestClient, worker_for: Callable[[TestClient], Worker]
) -> None:
    worker = worker_for(client)
    body = speech(input=LONG, response_format="pcm", seed=5)
    _, streamed = call(client, worker, body)
    _, whole = call(client, worker, {**body, "stream": False})
    assert streamed == whole


def test_other_formats_keep_the_engines_rate(
    client: TestClient, worker_for: Callable[[TestClient], Worker]
) -> None:
    worker = worker_for(client)
    resp, audio = call(client, worker, speech(response_format="wav", stream=False))
    assert resp.headers["x-sample-rate"] == str(RATE)
    job = job_of(client, resp)
    assert "output_rate" not in job["params"] and job["output"]["sample_rate"] == RATE
    assert decode(audio, "wav")[1] == RATE


def test_jobs_api_pcm_stays_at_the_engines_rate(
    client: TestClient, worker_for: Callable[[TestClient], Worker]
) -> None:
    """Only the OpenAI drop-in speaks OpenAI's rate; ``POST /v1/jobs`` is unchanged."""
    worker = worker_for(client)
    ran = worker.later(worker.run)
    created = client.post("/v1/jobs", json={"text": "Hello there.", "format": "pcm"})
    assert created.status_code == 202, created.text
    assert ran.result() == "succeeded"
    job = client.get(f"/v1/jobs/{created.json()['id']}").json()
    assert job["output"]["sample_rate"] == RATE and "output_rate" not in job["params"]
    stored = client.get(f"/v1/jobs/{job['id']}/audio").content
    samples, _ = decode(stored, "pcm", sample_rate=RATE)
    assert encode(samples, RATE, "pcm") == stored


# --- unknown fields ---------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_unknown_fields_are_ignored_and_named(
    client: TestClient, worker_for: Callable[[TestClient], Worker], stream: bool
) -> None:
    worker = worker_for(client)
    extra = {"temperature": 0.2, "x-new option": {"a": 1}, "stream": stream}
    resp, audio = call(client, worker, speech(**extra))
    assert audio
    assert resp.headers[IGNORED] == "temperature,x-new%20option"
    job = job_of(client, resp)
    assert "temperature" not in job["params"]


def test_nothing_ignored_no_header(
    client: TestClient, worker_for: Callable[[TestClient], Worker]
) -> None:
    resp, _ = call(client, worker_for(client), speech())
    assert IGNORED not in resp.headers


def test_the_header_stays_small_whatever_is_sent(
    client: TestClient, worker_for: Callable[[TestClient], Worker]
) -> None:
    extra = {f"field_{n}": n for n in range(30)} | {"é" * 300: 1}
    resp, _ = call(client, worker_for(client), speech(**extra))
    value = resp.headers[IGNORED]
    assert value.isascii() and len(value) < 1024
    assert value.startswith("field_0,field_1,") and value.endswith("...11 more")


def test_unknown_fields_are_still_refused_by_the_jobs_api(client: TestClient) -> None:
    resp = client.post("/v1/jobs", json={"text": "Hello there.", "temperature": 0.2})
    err = error_of(resp, 422, "invalid_request")
    assert "temperature" in [f["field"] for f in err["fields"]]
    assert client.get("/v1/jobs").json()["items"] == []


def test_a_known_field_out_of_range_is_still_refused(client: TestClient) -> None:
    err = error_of(
        client.post("/v1/audio/speech", json=speech(speed=9, temperature=1)), 422, "invalid_request"
    )
    assert [f["field"] for f in err["fields"]] == ["speed"]
