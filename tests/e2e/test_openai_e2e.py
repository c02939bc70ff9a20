"""The OpenAI-compatible API as OpenAI's own client sees it: a real ``serve`` with real Piper.

Streaming is measured here too: time to first audio byte against the whole call, on a text of
several sentences (``-s`` prints the numbers).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from openai import OpenAI
from processes import Service, ServiceFactory, poll  # type: ignore[import-not-found]

from steadyvoice.audio.formats import CONTENT_TYPES, FORMATS, decode

pytestmark = pytest.mark.timeout(300)

TEXT = "Steady voices read the statement aloud. The balance is forty two pounds."
STORY = (
    "The lighthouse keeper climbed the stairs at dusk. "
    "He wound the clockwork that turned the great lens. "
    "Far out at sea, a fishing boat was heading home. "
    "The beam swept across the water every ten seconds. "
    "The crew saw it and steered toward the harbour. "
    "By midnight the boat was tied up at the quay. "
    "The keeper wrote the time in his logbook. "
    "Then he made a pot of tea and watched the dark."
)
RATE = 22_050  # Piper's joe voice
PCM_RATE = 24_000  # OpenAI's pcm, resampled


def sdk(svc: Service) -> OpenAI:
    """OpenAI's client, pointed at the service with its admin key."""
    key = svc.http.headers["Authorization"].removeprefix("Bearer ")
    return OpenAI(base_url=svc.url + "/v1", api_key=key, max_retries=0, timeout=120)


def piper(start_service: ServiceFactory, service_env: Callable[..., dict[str, str]]) -> Service:
    svc: Service = start_service(service_env(engine="piper"))
    return svc


def stored(svc: Service, job_id: str) -> tuple[dict[str, Any], bytes]:
    job = svc.job(job_id)
    assert job["status"] == "succeeded", job
    body = svc.http.get(f"/v1/jobs/{job_id}/audio").content
    assert hashlib.sha256(body).hexdigest() == job["output"]["sha256"]
    return job, body


def test_the_openai_client_speaks_every_format_repeatably(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]]
) -> None:
    svc = piper(start_service, service_env)
    client = sdk(svc)
    assert {"tts-1", "tts-1-hd", "piper"} <= {m.id for m in client.models.list()}
    for fmt in FORMATS:
        answers = []
        for _ in range(2):  # the same request with a seed: the same bytes, every format
            raw = client.audio.speech.with_raw_response.create(
                model="tts-1",
                voice="alloy",
                input=TEXT,
                response_format=fmt,  # type: ignore[arg-type]
                extra_body={"seed": 11, "stream": False},  # the stored file, whole
            )
            assert raw.status_code == 200
            assert raw.headers["content-type"] == CONTENT_TYPES[fmt]
            answers.append((raw.headers["x-job-id"], raw.content))
        (first_id, audio), (second_id, again) = answers
        assert first_id != second_id, "each call is its own job"
        assert audio == again, f"{fmt}: same seed, other bytes"
        job, file = stored(svc, first_id)
        assert file == audio
        pcm = {"output_rate": PCM_RATE} if fmt == "pcm" else {}  # OpenAI's pcm: 24 kHz
        params = {"seed": 11, "speed": 1.0, "format": fmt, **pcm, **_normalized(job)}
        assert job["params"] == params
        out_rate = PCM_RATE if fmt == "pcm" else RATE
        samples, rate = decode(audio, fmt, sample_rate=out_rate)
        assert job["output"]["sample_rate"] == int(raw.headers["x-sample-rate"]) == out_rate
        assert rate == (48_000 if fmt == "opus" else out_rate)  # Opus decoders hand out 48 kHz
        seconds = len(samples) / rate
        # Lossless and opus (Ogg knows its length): exact. MP3 and AAC add encoder priming and
        # pad to a whole frame (lossy.py): up to about 0.1 s at 22.05 kHz.
        slack = 0.12 if fmt in ("mp3", "aac") else 0.001
        assert abs(seconds - job["output"]["duration_seconds"]) <= slack, (fmt, seconds)
        assert np.abs(samples).max() > 0.05, "speech, not silence"
    other = client.audio.speech.create(
        model="tts-1", voice="alloy", input=TEXT, response_format="pcm", extra_body={"seed": 12}
    )
    pcm_11 = client.audio.speech.create(
        model="tts-1", voice="alloy", input=TEXT, response_format="pcm", extra_body={"seed": 11}
    )
    assert other.content != pcm_11.content, "another seed, other audio"


def _normalized(job: dict[str, Any]) -> dict[str, Any]:
    key = "text_normalization"
    return {key: job["params"][key]} if key in job["params"] else {}


def _stream(
    client: OpenAI, fmt: str, text: str = STORY, seed: int | None = None
) -> tuple[str, list[bytes], float, float, datetime]:
    """One streamed call: job id, the parts as received, time to first byte, total time, and
    the wall-clock time of the first byte."""
    started = time.perf_counter()
    parts: list[bytes] = []
    first = total = 0.0
    first_at = datetime.now(UTC)
    with client.audio.speech.with_streaming_response.create(
        model="tts-1",
        voice="alloy",
        input=text,
        response_format=fmt,  # type: ignore[arg-type]
        extra_body={"stream": True} if seed is None else {"stream": True, "seed": seed},
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers.get("transfer-encoding") == "chunked"
        job_id = resp.headers["x-job-id"]
        for part in resp.iter_bytes():
            if part and not parts:
                first = time.perf_counter() - started
                first_at = datetime.now(UTC)
            parts.append(part)
    total = time.perf_counter() - started
    return job_id, parts, first, total, first_at


def test_streaming_starts_before_the_text_is_spoken_and_is_the_stored_audio(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]]
) -> None:
    svc = piper(start_service, service_env)
    client = sdk(svc)
    client.audio.speech.create(model="tts-1", voice="alloy", input="Warm up.")  # first-use costs
    started = time.perf_counter()
    whole = client.audio.speech.create(
        model="tts-1",
        voice="alloy",
        input=STORY,
        response_format="pcm",
        extra_body={"stream": False},
    )
    whole_seconds = time.perf_counter() - started
    job_id, parts, first, total, first_at = _stream(client, "pcm")
    job, file = stored(svc, job_id)
    print(
        f"\npiper, {len(STORY)} chars, 8 sentences, {job['output']['duration_seconds']:.1f} s "
        f"of audio: streamed first byte {first * 1000:.0f} ms, streamed total "
        f"{total * 1000:.0f} ms, not streamed {whole_seconds * 1000:.0f} ms"
    )
    assert first < total / 2, (first, total)
    finished = datetime.fromisoformat(job["finished_at"])
    assert first_at < finished, "the first audio left before the job was done"
    assert len([p for p in parts if p]) >= 4, "sentence by sentence"
    assert b"".join(parts) == file, "pcm: the stream is the stored file"
    assert whole.content == file, "streaming does not change the audio"
    # WAV streams the same samples behind a header that leaves the length open.
    job_id, parts, first, total, _ = _stream(client, "wav")
    print(f"wav: first byte {first * 1000:.0f} ms, total {total * 1000:.0f} ms")
    streamed, file = b"".join(parts), stored(svc, job_id)[1]
    assert streamed[44:] == file[44:] and streamed[:4] == file[:4] == b"RIFF"
    a, rate_a = decode(streamed, "wav")
    b, rate_b = decode(file, "wav")
    assert rate_a == rate_b == RATE and np.array_equal(a, b)
    # MP3 streamed: the very bytes stored (the encoder's stream equals its one-shot output).
    job_id, parts, first, total, _ = _stream(client, "mp3")
    print(f"mp3: first byte {first * 1000:.0f} ms, total {total * 1000:.0f} ms")
    assert b"".join(parts) == stored(svc, job_id)[1]


def test_leaving_mid_stream_cancels_the_job_and_frees_the_worker(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]]
) -> None:
    svc = piper(start_service, service_env)
    client = sdk(svc)
    long_story = " ".join([STORY] * 4)  # 32 sentences: many seconds of synthesis
    with client.audio.speech.with_streaming_response.create(
        model="tts-1",
        voice="alloy",
        input=long_story,
        response_format="pcm",
        extra_body={"stream": True},
    ) as resp:
        job_id = resp.headers["x-job-id"]
        first = next(resp.iter_bytes())
        assert first
    # The connection is closed: the API cancels the job, the worker stops at its next chunk.
    job = poll(lambda: (j := svc.job(job_id))["status"] != "running" and j, 30, "the job to stop")
    assert job["status"] == "canceled" and job["output"] is None
    data_dir = Path(svc.env["STEADYVOICE_DATA_DIR"])
    assert not any(p.name.endswith(".pcm") for p in (data_dir / "outputs").rglob("*"))
    stopped = poll(lambda: _event(svc, "job.abandoned"), 30, "the worker to stop")
    assert stopped["job_id"] == job_id and stopped["reason"] == "canceled"
    assert stopped["chunks"] < 16, "it stopped early: 32 sentences were asked for"
    print(f"\nclient left after 1 chunk; the worker stopped after {stopped['chunks']} of 32")
    # The worker is free at once: the next call is answered in the time of its own synthesis.
    started = time.perf_counter()
    assert client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT).content
    assert time.perf_counter() - started < 20


def _event(svc: Service, name: str) -> dict[str, Any] | None:
    """The first JSON log line of the service (and its workers) with event ``name``."""
    for line in svc.log().splitlines():
        if f'"{name}"' in line:
            record: dict[str, Any] = json.loads(line)
            if record.get("event") == name:
                return record
    return None


def test_a_job_ended_mid_stream_leaves_the_stream_truncated(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]]
) -> None:
    """Canceled by another call while streaming: the stream is cut without its terminating
    chunk, so an HTTP client raises instead of taking half the audio for all of it."""
    svc = piper(start_service, service_env)
    body = {
        "model": "tts-1",
        "voice": "alloy",
        "input": " ".join([STORY] * 4),
        "response_format": "pcm",
        "stream": True,
    }
    received = 0
    with (
        httpx.Client(base_url=svc.url, headers=dict(svc.http.headers), timeout=60) as http,
        http.stream("POST", "/v1/audio/speech", json=body) as resp,
    ):
        assert resp.status_code == 200
        job_id = resp.headers["x-job-id"]
        parts = resp.iter_bytes()
        received += len(next(parts))
        assert svc.http.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            for part in parts:
                received += len(part)
    assert received > 0
    assert svc.job(job_id)["status"] == "canceled"


LONG_FIRST = (
    "The quarterly report from the northern regional office shows that customer numbers grew "
    "steadily through the spring and summer months while the waiting time fell. "
    "The board meets on Thursday."
)


def _events(svc: Service, name: str, job_id: str) -> list[dict[str, Any]]:
    """The JSON log lines of the service (and its workers) with event ``name`` for a job."""
    found = []
    for line in svc.log().splitlines():
        if f'"{name}"' in line and job_id in line:
            record: dict[str, Any] = json.loads(line)
            if record.get("event") == name and record.get("job_id") == job_id:
                found.append(record)
    return found


def test_a_long_first_sentence_streams_its_clause_first_and_the_same_bytes(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]]
) -> None:
    """The leading clause is cut streamed or not: the stream, the stored file and the plain
    answer for the same seed are the same bytes."""
    svc = piper(start_service, service_env)
    client = sdk(svc)
    job_id, parts, _, _, _ = _stream(client, "pcm", LONG_FIRST, seed=7)
    job, file = stored(svc, job_id)
    assert b"".join(parts) == file, "the stream is the stored file"
    plain = client.audio.speech.with_raw_response.create(
        model="tts-1",
        voice="alloy",
        input=LONG_FIRST,
        response_format="pcm",
        extra_body={"seed": 7, "stream": False},
    )
    assert plain.content == file, "streamed or not, the same bytes"
    assert stored(svc, plain.headers["x-job-id"])[0]["engine_version"] == job["engine_version"]
    assert "+split-clause1+" in job["engine_version"]
    (first,) = poll(lambda: _events(svc, "job.first_chunk", job_id), 30, "the first chunk event")
    assert first["audio_seconds"] < job["output"]["duration_seconds"] / 4, "a clause, not all"
    (sent,) = _events(svc, "speech.first_audio", job_id)
    assert sent["submitted_ms"] <= sent["read_ms"] <= sent["sent_ms"]


def test_speech_calls_are_woken_by_the_worker_not_by_their_next_poll(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]]
) -> None:
    """With a 5 s poll, a call still answers as soon as its (instant) job is done: the worker
    rings the API for each chunk and for the job's end. Without the ring it takes 5 s."""
    svc = start_service(service_env(engine="fake", speech__poll_seconds="5"))
    client = sdk(svc)
    for streamed in (False, True):
        started = time.monotonic()
        if streamed:
            job_id = _stream(client, "pcm", TEXT)[0]
        else:
            job_id = client.audio.speech.with_raw_response.create(
                model="tts-1", voice="alloy", input=TEXT, response_format="pcm"
            ).headers["x-job-id"]
        elapsed = time.monotonic() - started
        assert svc.job(job_id)["status"] == "succeeded"
        assert elapsed < 4.5, f"streamed={streamed}: {elapsed:.1f} s, as if polled every 5 s"


def test_the_sdks_streaming_call_streams_as_it_is_sent(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]]
) -> None:
    """OpenAI's own streaming call, exactly as its docs write it (no ``stream`` field, the
    current model, a new voice, a field of a newer SDK): audio arrives while the job is still
    running, as 24 kHz pcm, and is the stored file. The fake engine, slowed to about 0.3 s a
    sentence, keeps this quick."""
    svc = start_service(service_env(engine="fake", fake__seconds_per_char="0.01"))
    client = sdk(svc)
    text = " ".join(f"Sentence number {n} is here." for n in range(1, 9))
    parts: list[bytes] = []
    status_at_first_audio = ""
    with client.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts",
        voice="marin",
        input=text,
        response_format="pcm",
        extra_body={"future_option": True},
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["transfer-encoding"] == "chunked"
        assert resp.headers["x-sample-rate"] == str(PCM_RATE)
        assert resp.headers["x-steadyvoice-ignored-fields"] == "future_option"
        job_id = resp.headers["x-job-id"]
        for part in resp.iter_bytes():
            if part and not parts:
                status_at_first_audio = svc.job(job_id)["status"]
            parts.append(part)
    assert status_at_first_audio == "running", "the first audio came before the job was done"
    job, file = stored(svc, job_id)
    assert job["params"]["stream"] is True and job["params"]["output_rate"] == PCM_RATE
    assert job["output"]["sample_rate"] == PCM_RATE
    assert b"".join(parts) == file
    assert len([p for p in parts if p]) >= 4, "sentence by sentence"
