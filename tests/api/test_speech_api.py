"""``POST /v1/audio/speech``, ``GET /v1/models``, ``GET /v1/audio/voices`` and audio conversion,
in process with the fake engine. A thread of the test plays the worker with the real runner
(``run_claimed``), or records a failure or a cancel itself where a test needs one."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import anyio
import numpy as np
import pytest
import soundfile as sf
from fastapi import FastAPI
from fastapi.testclient import TestClient
from http_checks import error_of  # type: ignore[import-not-found]
from prometheus_client.parser import text_string_to_metric_families
from speech import reference_wav  # type: ignore[import-not-found]
from speech_calls import (  # type: ignore[import-not-found]
    LONG,
    PCM_RATE,
    RATE,
    SAY,
    Worker,
    job_of,
    services,
    speech,
)
from starlette.types import Message

from steadyvoice.api.shutdown import MARGIN_SECONDS, shutdown_of
from steadyvoice.audio.formats import CONTENT_TYPES, FORMATS, decode
from steadyvoice.audio.pcm import pcm16
from steadyvoice.jobs.chunks import ChunkStore
from steadyvoice.jobs.store import Claim, Result
from steadyvoice.security.keys import NewKey
from steadyvoice.security.principal import Role
from steadyvoice.settings import OPENAI_VOICES

pytestmark = pytest.mark.timeout(60)

CONSENT = "I, Jane Example, agree that steadyvoice may use my voice. 2026-11-25."
MODELS = ["tts-1", "tts-1-hd", "gpt-4o-mini-tts", "fake"]


def metric(client: TestClient, name: str, **labels: str) -> float:
    """A sample's value in ``/metrics`` (0 if absent). Metrics are process-wide: compare."""
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def first_audio_count(client: TestClient, *, streamed: bool) -> float:
    name = "steadyvoice_speech_first_audio_seconds_count"
    return metric(client, name, streamed="true" if streamed else "false")


# --- whole files ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_speech_answers_the_jobs_stored_file(
    client: TestClient, worker_for: Callable[[TestClient], Worker], fmt: str
) -> None:
    worker = worker_for(client)
    ran = worker.later(worker.run)
    body = speech(response_format=fmt, seed=7, stream=False)
    resp = client.post("/v1/audio/speech", json=body)
    assert resp.status_code == 200, resp.text
    assert ran.result() == "succeeded"
    assert resp.headers["content-type"] == CONTENT_TYPES[fmt]
    job = job_of(client, resp)
    assert job["status"] == "succeeded" and job["params"]["format"] == fmt
    assert job["params"]["seed"] == 7 and "stream" not in job["params"]
    assert job["voice"] == "alpha"  # alloy: not in speech.voice_map, so the default voice
    digest = hashlib.sha256(resp.content).hexdigest()
    assert resp.headers["x-content-sha256"] == digest == job["output"]["sha256"]
    out_rate = PCM_RATE if fmt == "pcm" else RATE  # OpenAI's pcm is 24 kHz, resampled
    assert resp.headers["x-sample-rate"] == str(out_rate) == str(job["output"]["sample_rate"])
    assert job["params"].get("output_rate") == (PCM_RATE if fmt == "pcm" else None)
    samples, rate = decode(resp.content, fmt, sample_rate=out_rate)
    assert rate == (48_000 if fmt == "opus" else out_rate)
    assert abs(len(samples) / rate - job["output"]["duration_seconds"]) < 0.15


def test_a_speech_call_is_an_audited_job(
    client: TestClient, worker_for: Callable[[TestClient], Worker]
) -> None:
    worker = worker_for(client)
    counted = first_audio_count(client, streamed=False)
    ran = worker.later(worker.run)
    resp = client.post(
        "/v1/audio/speech",
        json=speech(input="It costs $5.", stream=False),
        headers={"X-Request-ID": "rq-1"},
    )
    assert resp.status_code == 200 and ran.result() == "succeeded"
    job = job_of(client, resp)
    assert job["spoken_text"] == "It costs five dollars."  # normalized, recorded on the job
    audit = client.get("/v1/audit", params={"action": "speech.create"}).json()["items"]
    assert [(a["object_id"], a["outcome"], a["request_id"]) for a in audit] == [
        (job["id"], "ok", "rq-1")
    ]
    assert first_audio_count(client, streamed=False) == counted + 1


def test_an_idempotent_repeat_answers_the_first_job(
    client: TestClient, worker_for: Callable[[TestClient], Worker]
) -> None:
    worker = worker_for(client)
    ran = worker.later(worker.run)
    key = {"Idempotency-Key": "speech-1"}
    first = client.post("/v1/audio/speech", json=speech(), headers=key)
    assert first.status_code == 200 and ran.result() == "succeeded"
    again = client.post("/v1/audio/speech", json=speech(), headers=key)
    assert again.status_code == 200
    assert again.headers["x-job-id"] == first.headers["x-job-id"]
    assert again.content == first.content
    assert len(client.get("/v1/jobs").json()["items"]) == 1


def test_voice_names_resolve_as_documented(
    client_factory: Callable[..., TestClient], worker_for: Callable[[TestClient], Worker]
) -> None:
    client = client_factory(speech={"voice_map": {"nova": "beta", "house": "beta"}})
    worker = worker_for(client)
    cases = [
        ("nova", "beta"),  # mapped
        ("house", "beta"),  # a name of our own in the map
        ("echo", "alpha"),  # an OpenAI name left out of the map: the default voice
        ("beta", "beta"),  # an engine voice
        ({"id": "beta"}, "beta"),  # OpenAI's object form
    ]
    for voice, spoken in cases:
        ran = worker.later(worker.run)
        resp = client.post("/v1/audio/speech", json=speech(voice=voice))
        assert resp.status_code == 200, resp.text
        assert ran.result() == "succeeded"
        assert job_of(client, resp)["voice"] == spoken, voice


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (speech(model="gpt-9"), "unknown_model", None),
        (speech(stream=True, stream_format="sse"), "invalid_request", "stream_format"),
        (speech(voice="nobody"), "unknown_voice", None),
        (speech(voice="vp_" + "0" * 32), "unknown_voice", None),
        (speech(input="  "), "text_empty", None),
        (speech(instructions="happy"), "invalid_request", None),  # fake takes none
        (speech(response_format="ogg"), "invalid_request", "response_format"),
        (speech(speed=4.5), "invalid_request", "speed"),
        ({"input": SAY, "voice": "alloy"}, "invalid_request", "model"),
    ],
)
def test_bad_requests_are_422_and_queue_nothing(
    client: TestClient, body: dict[str, Any], code: str, field: str | None
) -> None:
    err = error_of(client.post("/v1/audio/speech", json=body), 422, code)
    if field is not None and code == "invalid_request" and "fields" in err:
        assert field in [f["field"] for f in err["fields"]]
    elif field is not None:
        assert err["field"] == field
    if code == "unknown_model":
        assert err["available"] == MODELS
    assert client.get("/v1/jobs").json()["items"] == []


@pytest.mark.parametrize("model", MODELS)
def test_every_listed_model_speaks(
    client: TestClient, worker_for: Callable[[TestClient], Worker], model: str
) -> None:
    """OpenAI's current ``gpt-4o-mini-tts`` too, by default; all are the one engine."""
    worker = worker_for(client)
    ran = worker.later(worker.run)
    assert client.post("/v1/audio/speech", json=speech(model=model)).status_code == 200
    assert ran.result() == "succeeded"


def test_no_worker_in_time_is_504_and_the_job_goes_on(
    client_factory: Callable[..., TestClient], worker_for: Callable[[TestClient], Worker]
) -> None:
    client = client_factory(speech={"wait_seconds": 0.3})
    worker_for(client)  # alive, but it never takes the job
    started = time.monotonic()
    body = speech(stream=False)
    err = error_of(client.post("/v1/audio/speech", json=body), 504, "speech_timeout")
    assert 0.3 <= time.monotonic() - started < 5
    assert err["status"] == "queued" and err["wait_seconds"] == 0.3
    assert client.get(f"/v1/jobs/{err['job_id']}").json()["status"] == "queued"
    # Streaming waits as long for its first chunk.
    err = error_of(client.post("/v1/audio/speech", json=speech(stream=True)), 504, "speech_timeout")
    assert client.get(f"/v1/jobs/{err['job_id']}").json()["params"]["stream"] is True


@pytest.mark.parametrize("stream", [False, True])
def test_a_failed_job_is_502_speech_failed(
    client: TestClient, worker_for: Callable[[TestClient], Worker], stream: bool
) -> None:
    worker = worker_for(client)
    failed = worker.later(lambda c: worker.svc.store.fail(c, "engine_error", "the model broke"))
    err = error_of(
        client.post("/v1/audio/speech", json=speech(stream=stream)), 502, "speech_failed"
    )
    assert failed.result() is True
    assert err["job_error"] == {"code": "engine_error", "message": "the model broke"}
    assert client.get(f"/v1/jobs/{err['job_id']}").json()["status"] == "failed"


def test_a_job_failed_by_its_request_is_422_with_its_code(
    client: TestClient, worker_for: Callable[[TestClient], Worker]
) -> None:
    worker = worker_for(client)
    worker.later(lambda c: worker.svc.store.fail(c, "voice_deleted", "the profile was deleted"))
    err = error_of(client.post("/v1/audio/speech", json=speech()), 422, "voice_deleted")
    assert err["message"] == "the profile was deleted" and err["job_id"]


def test_a_job_canceled_meanwhile_is_409(
    client: TestClient, worker_for: Callable[[TestClient], Worker]
) -> None:
    worker = worker_for(client)
    worker.later(lambda c: worker.svc.store.cancel(c.job.id))
    err = error_of(client.post("/v1/audio/speech", json=speech()), 409, "audio_not_ready")
    assert err["status"] == "canceled"


def test_roles_viewer_reads_the_lists_operator_speaks(client: TestClient) -> None:
    keys = services(client).keys
    viewer = keys.create(NewKey(Role.VIEWER, "default", "viewer"), by="test").token
    as_viewer = {"Authorization": f"Bearer {viewer}"}
    err = error_of(
        client.post("/v1/audio/speech", json=speech(), headers=as_viewer), 403, "forbidden"
    )
    assert err["needed"] == "operator"
    assert client.get("/v1/models", headers=as_viewer).status_code == 200
    assert client.get("/v1/audio/voices", headers=as_viewer).status_code == 200


# --- streaming --------------------------------------------------------------------------------


def read_stream(client: TestClient, body: dict[str, Any], **kwargs: Any) -> tuple[Any, list[bytes]]:
    parts: list[bytes] = []
    with client.stream("POST", "/v1/audio/speech", json=body, **kwargs) as resp:
        parts.extend(resp.iter_bytes())
    return resp, parts


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_stream_is_the_stored_files_audio(
    client_factory: Callable[..., TestClient],
    worker_for: Callable[[TestClient], Worker],
    fmt: str,
) -> None:
    client = client_factory(fake={"seconds_per_char": 0.002})
    worker = worker_for(client)
    ran = worker.later(worker.run)
    resp, parts = read_stream(client, speech(input=LONG, stream=True, response_format=fmt))
    assert resp.status_code == 200 and ran.result() == "succeeded"
    assert resp.headers["content-type"] == CONTENT_TYPES[fmt]
    assert "x-content-sha256" not in resp.headers and "content-length" not in resp.headers
    job = job_of(client, resp)
    assert job["params"]["stream"] is True
    stored = client.get(f"/v1/jobs/{job['id']}/audio").content
    streamed = b"".join(parts)
    if fmt == "wav":  # the streamed header says "length unknown"; the samples are the same
        assert streamed[44:] == stored[44:] and len(streamed) == len(stored)
    else:  # pcm, flac, and the lossy encoders: the very bytes of the stored file
        assert streamed == stored
    if fmt not in ("flac", "mp3", "aac", "opus"):
        assert len([p for p in parts if p]) >= 4, "sent sentence by sentence"
    assert ChunkStore(services(client).store).after(job["id"], -1) == [], "chunks deleted"


@pytest.mark.parametrize(
    ("fields", "streamed"),
    [
        ({}, True),  # as OpenAI's SDK sends it: no stream field
        ({"stream": False}, False),
        ({"stream": True}, True),
        ({"response_format": "flac"}, False),  # sent at its end anyway: the file, whole
        ({"response_format": "flac", "stream": True}, True),
    ],
)
def test_calls_stream_unless_told_not_to(
    client: TestClient,
    worker_for: Callable[[TestClient], Worker],
    fields: dict[str, Any],
    streamed: bool,
) -> None:
    worker = worker_for(client)
    ran = worker.later(worker.run)
    resp, parts = read_stream(client, speech(input=LONG, **fields))
    assert resp.status_code == 200 and ran.result() == "succeeded"
    job = job_of(client, resp)
    assert job["params"].get("stream", False) is streamed
    if streamed:
        assert "x-content-sha256" not in resp.headers and "content-length" not in resp.headers
    else:
        assert resp.headers["x-content-sha256"] == job["output"]["sha256"]
    stored = client.get(f"/v1/jobs/{job['id']}/audio").content
    assert b"".join(parts) == stored  # mp3 and flac: streamed or not, the same bytes


def test_leaving_mid_stream_cancels_the_job_and_stops_the_worker(
    client_factory: Callable[..., TestClient], worker_for: Callable[[TestClient], Worker]
) -> None:
    client = client_factory(fake={"seconds_per_char": 0.01})  # about 0.25 s per sentence
    worker = worker_for(client)
    counted = first_audio_count(client, streamed=True)
    canceled = {"status": "canceled", "error_code": "", "outcome": "canceled"}
    cancels = metric(client, "steadyvoice_jobs_finished_total", **canceled)
    ran = worker.later(worker.run)
    with client.stream(
        "POST", "/v1/audio/speech", json=speech(input=LONG, stream=True, response_format="pcm")
    ) as resp:
        assert resp.status_code == 200
        first = next(resp.iter_bytes())
        assert first
        job_id = resp.headers["x-job-id"]
    assert ran.result(timeout=20) == "canceled"  # the runner stopped at its next chunk
    store = services(client).store
    job = store.get(job_id)
    assert job.status == "canceled" and job.sha256 is None
    assert not services(client).storage.path(job.output_name).exists()
    assert ChunkStore(store).after(job_id, -1) == []
    assert first_audio_count(client, streamed=True) == counted + 1
    # Counted once, by the API that canceled it (the runner that stopped counts nothing).
    assert metric(client, "steadyvoice_jobs_finished_total", **canceled) == cancels + 1


async def _asgi_call(
    app: Any, body: bytes, token: str, audio_sent: threading.Event
) -> list[Message]:
    """One request at the ASGI level, as uvicorn makes it; every message the app sends."""
    sent: list[Message] = []
    gone = anyio.Event()
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            audio_sent.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/audio/speech",
        "raw_path": b"/v1/audio/speech",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    await app(scope, receive, send)
    gone.set()
    return sent


@pytest.mark.parametrize("ending", ["failed", "succeeded_with_a_chunk_gone", "shutting_down"])
def test_a_stream_that_cannot_be_whole_is_cut_short(
    client: TestClient, worker_for: Callable[[TestClient], Worker], ending: str
) -> None:
    """No terminating chunk: the server closes the connection, and a client sees a truncated
    body rather than a complete one (over real HTTP: tests/e2e/test_openai_e2e.py). Both when
    the job fails mid-stream, when it succeeds but audio it recorded never reached the
    stream (its chunks deleted meanwhile), and when the server shuts down before its end (cut
    within the grace period, cleanly, rather than canceled by uvicorn)."""
    svc = services(client)
    worker = worker_for(client)
    chunks = ChunkStore(svc.store)
    tone = np.sin(np.linspace(0, 200, RATE)).astype(np.float32) * 0.3
    audio_sent = threading.Event()

    def one_chunk_then_end(claim: Claim) -> None:
        assert chunks.add(claim, 0, RATE, pcm16(tone, RATE))
        assert audio_sent.wait(10), "the stream never sent the first chunk"
        if ending == "failed":
            assert svc.store.fail(claim, "engine_error", "died mid-way")
            return
        if ending == "shutting_down":  # no time left: the job goes on, the stream ends here
            shutdown_of(cast(FastAPI, client.app)).begin(MARGIN_SECONDS)
            return
        # Recorded as two chunks' worth of audio, of which the stream saw one.
        data = pcm16(np.concatenate([tone, tone]), RATE)
        sha, size = svc.storage.write_atomic(claim.job.output_name, data)
        assert svc.store.complete(claim, Result("fake-1+sr16000", RATE, 2.0, sha, size))

    ended = worker.later(one_chunk_then_end)
    body = json.dumps(speech(stream=True, response_format="wav")).encode()
    token = client.headers["Authorization"].removeprefix("Bearer ")
    assert client.portal is not None
    sent = client.portal.call(_asgi_call, client.app, body, token, audio_sent)
    ended.result()
    start, *bodies = sent
    assert start["type"] == "http.response.start" and start["status"] == 200
    assert b"".join(m["body"] for m in bodies)[44:] == pcm16(tone, RATE)  # after its header
    assert all(m.get("more_body") for m in bodies), "no terminating chunk"


def test_a_repeated_stream_after_its_chunks_are_gone_gets_the_stored_file(
    client: TestClient, worker_for: Callable[[TestClient], Worker]
) -> None:
    worker = worker_for(client)
    ran = worker.later(worker.run)
    key = {"Idempotency-Key": "stream-1"}
    body = speech(input=LONG, stream=True, response_format="wav")
    first, parts = read_stream(client, body, headers=key)
    assert first.status_code == 200 and ran.result() == "succeeded"
    again = client.post("/v1/audio/speech", json=body, headers=key)
    assert again.status_code == 200
    assert again.headers["x-job-id"] == first.headers["x-job-id"]
    stored = client.get(f"/v1/jobs/{first.headers['x-job-id']}/audio").content
    assert again.content == stored and again.headers["x-content-sha256"]
    assert b"".join(parts)[44:] == stored[44:]


# --- lists ------------------------------------------------------------------------------------


def test_models_in_openais_shape(client: TestClient) -> None:
    resp = client.get("/v1/models")
    assert resp.status_code == 200
    assert resp.json() == {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "steadyvoice"}
            for name in MODELS
        ],
    }


def test_voices_list_engine_openai_and_own_profiles(
    client_factory: Callable[..., TestClient],
) -> None:
    client = client_factory(speech={"voice_map": {"nova": "beta"}})
    keys = services(client).keys
    other = keys.create(NewKey(Role.OPERATOR, "other", "other"), by="test").token
    mine = client.post(
        "/v1/voices",
        data={"name": "Jane", "consent": CONSENT},
        files={"audio": ("clip.wav", reference_wav(), "audio/wav")},
    )
    assert mine.status_code == 201, mine.text
    body = client.get("/v1/audio/voices").json()
    assert body["engine"] == "fake" and body["default_voice"] == "alpha"
    by_id = {v["id"]: v for v in body["voices"]}
    assert by_id["alpha"] == {
        "id": "alpha",
        "kind": "engine",
        "speaks_as": "alpha",
        "name": None,
        "languages": ["*"],  # the fake engine takes any language
        "language": None,
    }
    assert by_id["nova"]["speaks_as"] == "beta" and by_id["alloy"]["speaks_as"] == "alpha"
    assert {v["id"] for v in body["voices"] if v["kind"] == "openai"} == set(OPENAI_VOICES)
    profile = by_id[mine.json()["id"]]
    assert profile == {
        "id": mine.json()["id"],
        "kind": "profile",
        "speaks_as": "alpha",
        "name": "Jane",
        "languages": ["*"],
        "language": None,  # no transcript, none declared
    }
    theirs = client.get("/v1/audio/voices", headers={"Authorization": f"Bearer {other}"}).json()
    assert [v for v in theirs["voices"] if v["kind"] == "profile"] == []
    client.delete(f"/v1/voices/{mine.json()['id']}")
    after = client.get("/v1/audio/voices").json()["voices"]
    assert [v for v in after if v["kind"] == "profile"] == []


# --- converting on download -------------------------------------------------------------------


def test_audio_download_converts_on_demand(
    client: TestClient, worker_for: Callable[[TestClient], Worker]
) -> None:
    worker = worker_for(client)
    ran = worker.later(worker.run)
    job = client.post("/v1/jobs", json={"text": SAY, "format": "wav"}).json()
    assert ran.result() == "succeeded"
    url = f"/v1/jobs/{job['id']}/audio"
    stored = client.get(url)
    same = client.get(url, params={"format": "wav"})
    assert same.content == stored.content
    assert same.headers["x-content-sha256"] == hashlib.sha256(stored.content).hexdigest()
    original, _ = sf.read(io.BytesIO(stored.content), dtype="float32")
    for fmt in ("flac", "pcm", "mp3"):
        conv = client.get(url, params={"format": fmt})
        assert conv.status_code == 200, conv.text
        assert conv.headers["content-type"] == CONTENT_TYPES[fmt]
        assert conv.headers["x-converted-from"] == "wav"
        assert conv.headers["x-source-sha256"] == stored.headers["x-content-sha256"]
        assert "x-content-sha256" not in conv.headers
        assert conv.headers["content-disposition"].endswith(f'.{fmt}"')
        samples, rate = decode(conv.content, fmt, sample_rate=RATE)
        assert rate == RATE
        if fmt != "mp3":  # lossless: the same samples
            assert np.array_equal(samples, original)
    error_of(client.get(url, params={"format": "ogg"}), 422, "unsupported_format")
