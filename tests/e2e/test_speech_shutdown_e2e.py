"""A real ``serve``: speech calls when no worker lives, and when the server gets SIGTERM while
a call waits. Every call gets a clean answer in time, and the log no traceback.

The fake engine is slowed down (``seconds_per_char``) so a job is still running when the signal
comes; uvicorn's grace period is ``GRACE`` seconds (steadyvoice/serve.py).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from processes import Service, ServiceFactory, poll  # type: ignore[import-not-found]

pytestmark = pytest.mark.timeout(240)

GRACE = 10.0  # uvicorn's timeout_graceful_shutdown in serve
# About 13 s of synthesis at 0.01 s per character: longer than the grace period, so an answer
# in it cannot be the job's own end; no longer, since serve's exit waits for the job to finish.
LONG = " ".join(f"Sentence number {n} is here, spoken slowly." for n in range(1, 31))
BAD_LOG = ("Traceback", "Exception in ASGI application", "CancelledError")


def slow_service(start_service: ServiceFactory, service_env: Callable[..., dict[str, str]]) -> Any:
    return start_service(service_env(engine="fake", fake__seconds_per_char="0.01"))


def running_job(svc: Service) -> str:
    def found() -> str | None:
        items = svc.http.get("/v1/jobs", params={"status": "running"}).json()["items"]
        return items[0]["id"] if items else None

    job_id: str = poll(found, 60, f"a running job; log:\n{svc.log()}")
    return job_id


def stopped(svc: Service) -> str:
    """SIGTERM was sent: wait for serve to exit; its log."""
    assert svc.proc is not None
    svc.proc.wait(timeout=90)
    log = svc.log()
    for bad in BAD_LOG:
        assert bad not in log, f"{bad!r} in the log:\n{log}"
    return log


def events(log: str, name: str) -> list[dict[str, Any]]:
    found = []
    for line in log.splitlines():
        if f'"{name}"' in line:
            record: dict[str, Any] = json.loads(line)
            if record.get("event") == name:
                found.append(record)
    return found


def test_sigterm_answers_a_waiting_call_503_within_the_grace_period(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]]
) -> None:
    svc = slow_service(start_service, service_env)
    body = {"model": "tts-1", "voice": "alloy", "input": LONG, "stream": False}
    answers: list[httpx.Response] = []
    headers = dict(svc.http.headers)

    def call() -> None:
        with httpx.Client(base_url=svc.url, headers=headers, timeout=120) as http:
            answers.append(http.post("/v1/audio/speech", json=body))

    caller = threading.Thread(target=call)
    caller.start()
    job_id = running_job(svc)
    assert svc.proc is not None
    signaled = time.monotonic()
    svc.proc.send_signal(signal.SIGTERM)
    caller.join(timeout=GRACE + 20)
    assert not caller.is_alive(), "no answer"
    waited = time.monotonic() - signaled
    (resp,) = answers
    assert resp.status_code == 503, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    err = resp.json()["error"]
    assert err["code"] == "shutting_down" and err["job_id"] == job_id
    assert resp.headers["retry-after"] == "5"
    assert waited < GRACE, f"answered {waited:.1f} s after SIGTERM"
    stopped(svc)


def test_sigterm_mid_stream_ends_the_stream_cleanly(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]]
) -> None:
    """A stream that has begun cannot become a 503: it ends without its terminating chunk
    (the client sees it is incomplete), in the grace period, and nothing is logged as a crash."""
    svc = slow_service(start_service, service_env)
    body = {"model": "tts-1", "voice": "alloy", "input": LONG, "response_format": "pcm"}
    received = 0
    with (
        httpx.Client(base_url=svc.url, headers=dict(svc.http.headers), timeout=60) as http,
        http.stream("POST", "/v1/audio/speech", json=body) as resp,
    ):
        assert resp.status_code == 200
        parts = resp.iter_bytes()
        received += len(next(parts))
        assert svc.proc is not None
        signaled = time.monotonic()
        svc.proc.send_signal(signal.SIGTERM)
        with pytest.raises(httpx.RemoteProtocolError):
            for part in parts:
                received += len(part)
        waited = time.monotonic() - signaled
    assert received > 0
    assert waited < GRACE, f"cut {waited:.1f} s after SIGTERM"
    log = stopped(svc)
    cuts = [e for e in events(log, "speech.stream_cut") if e.get("reason") == "shutting_down"]
    assert len(cuts) == 1, log


def test_no_live_worker_is_503_at_once(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]]
) -> None:
    svc = start_service(service_env(engine="fake", workers="0"), ready=False)
    started = time.monotonic()
    resp = svc.http.post(
        "/v1/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": "Hi."}
    )
    assert time.monotonic() - started < 5
    assert resp.status_code == 503, resp.text
    assert resp.json()["error"]["code"] == "no_live_worker"
    assert resp.headers["retry-after"] == "5"
    assert svc.http.get("/v1/jobs").json()["items"] == []
    # The durable queue still takes work, and says nothing will run it yet.
    queued = svc.http.post("/v1/jobs", json={"text": "Later."})
    assert queued.status_code == 202 and queued.headers["x-steadyvoice-live-workers"] == "0"
