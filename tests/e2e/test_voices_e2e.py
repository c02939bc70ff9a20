"""Voice profiles through the real service: streamed upload limits and cloning with Piper."""

from __future__ import annotations

import hashlib
import io
import json
import select
import socket
import time
from collections.abc import Callable

import numpy as np
import soundfile as sf
from processes import ServiceFactory  # type: ignore[import-not-found]
from speech import encode, joe_speech, other_speaker  # type: ignore[import-not-found]

CONSENT = "Recorded and consented to by the speaker for steadyvoice tests, 2026-11-25."
TEXT = "Please listen carefully, as our menu options have changed."
LIMIT = 1024 * 1024
CHUNK = 64 * 1024


def _send_chunked_upload(port: int, budget: int, auth: bytes) -> tuple[int, bytes]:
    """Stream an endless multipart upload; return (bytes sent, response) once refused."""
    head = (
        b"POST /v1/voices HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth + b"\r\n"
        b"Content-Type: multipart/form-data; boundary=xyz\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    part = b'--xyz\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n\r\n'
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        payload = part
        deadline = time.monotonic() + 60
        while sent < budget and time.monotonic() < deadline:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            chunk = payload or b"\0" * CHUNK
            payload = b""
            try:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        return sent, _read_response(sock)


def _read_response(sock: socket.socket) -> bytes:
    """One whole HTTP response (headers and a Content-Length body)."""
    response = b""
    while b"\r\n\r\n" not in response:
        got = sock.recv(65536)
        assert got, f"connection closed mid-response: {response!r}"
        response += got
    head, body = response.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        got = sock.recv(65536)
        assert got, "connection closed mid-body"
        body += got
    return head + b"\r\n\r\n" + body


def test_an_endless_upload_is_cut_off_near_the_limit(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]]
) -> None:
    env = service_env(voices__max_upload_bytes=str(LIMIT))
    svc = start_service(env, "--no-workers", ready=False)
    port = int(svc.url.rsplit(":", 1)[1])
    budget = 200 * LIMIT  # what a client could push if the server read everything
    auth = f"Authorization: {svc.http.headers['Authorization']}".encode()
    sent, response = _send_chunked_upload(port, budget, auth)
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    error = json.loads(response.split(b"\r\n\r\n", 1)[1])["error"]
    assert error["code"] == "reference_too_large" and error["limit"] == LIMIT
    # Refused after about the limit (plus socket buffers), far from what was on offer.
    assert sent < 16 * LIMIT, sent
    # A declared size over the limit is refused before any body is sent.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/voices HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth + b"\r\n"
            b"Content-Type: multipart/form-data; boundary=xyz\r\n"
            b"Content-Length: 2147483648\r\n\r\n"
        )
        answer = _read_response(sock)
    assert answer.startswith(b"HTTP/1.1 413") and b"reference_too_large" in answer
    assert svc.http.get("/healthz").status_code == 200


def _embed(encoder: object, samples: np.ndarray, rate: int) -> np.ndarray:
    from resemblyzer import preprocess_wav

    wav = preprocess_wav(samples.astype(np.float32), source_sr=rate)
    embedding: np.ndarray = encoder.embed_utterance(wav)  # type: ignore[attr-defined]
    return embedding


def test_a_profile_job_sounds_closer_to_the_reference_and_repeats_exactly(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]]
) -> None:
    from resemblyzer import VoiceEncoder

    svc = start_service(service_env(engine="piper"))
    ref_samples, ref_rate = other_speaker()

    def create(name: str, audio: bytes) -> str:
        created = svc.http.post(
            "/v1/voices",
            data={"name": name, "consent": CONSENT},
            files={"audio": ("ref", audio, "application/octet-stream")},
        )
        assert created.status_code == 201, created.text
        voice: str = created.json()["id"]
        return voice

    voice_id = create("Other", encode(ref_samples, ref_rate, "FLAC"))
    # Joe adapted toward joe: the vocoder round trip alone, the control for the real target.
    joe_id = create("Joe", encode(*joe_speech(), "WAV"))

    def run(**fields: object) -> tuple[bytes, dict[str, object]]:
        job = svc.wait_job(svc.submit(TEXT, seed=11, **fields)["id"], timeout=120)
        assert job["status"] == "succeeded", job
        body = svc.http.get(f"/v1/jobs/{job['id']}/audio").content
        assert hashlib.sha256(body).hexdigest() == job["output"]["sha256"]
        return body, job

    adapted, job = run(voice=voice_id)
    again, _ = run(voice=voice_id)
    plain, plain_job = run()
    control, _ = run(voice=joe_id)
    assert adapted == again  # byte-identical on repeat
    assert adapted != plain
    assert "+adapt-" in str(job["engine_version"])
    assert "+adapt-" not in str(plain_job["engine_version"])

    encoder = VoiceEncoder("cpu", verbose=False)
    ref = _embed(encoder, ref_samples, ref_rate)
    sims = {}
    for name, body in (("adapted", adapted), ("plain", plain), ("control", control)):
        samples, rate = sf.read(io.BytesIO(body), dtype="float32")
        sims[name] = float(np.dot(_embed(encoder, samples, rate), ref))
    assert sims["adapted"] > sims["plain"] + 0.05, sims
    # Closer to this speaker in particular, not merely less like joe.
    assert sims["adapted"] > sims["control"] + 0.05, sims
