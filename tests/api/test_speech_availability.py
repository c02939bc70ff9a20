"""When a speech call cannot be served: no live worker (503 ``no_live_worker`` at once, nothing
recorded) and a server shutting down (503 ``shutting_down`` within the grace period, or the
audio if it is ready in time). In process; a real SIGTERM: tests/e2e/test_speech_shutdown_e2e.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from http_checks import error_of  # type: ignore[import-not-found]
from speech_calls import Worker, services, speech  # type: ignore[import-not-found]
from sqlalchemy import update

from steadyvoice.api.shutdown import MARGIN_SECONDS, shutdown_of
from steadyvoice.jobs.models import Worker as WorkerRow
from steadyvoice.jobs.models import utcnow
from steadyvoice.jobs.store import Claim

pytestmark = pytest.mark.timeout(60)

LIVE = "x-steadyvoice-live-workers"


def app_of(client: TestClient) -> FastAPI:
    return cast(FastAPI, client.app)


def jobs(client: TestClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.get("/v1/jobs").json()["items"]
    return items


# --- no live worker ---------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_no_live_worker_is_503_at_once_and_records_nothing(
    client: TestClient, stream: bool
) -> None:
    started = time.monotonic()
    resp = client.post("/v1/audio/speech", json=speech(stream=stream))
    err = error_of(resp, 503, "no_live_worker")
    assert time.monotonic() - started < 5, "not the 120 s wait"
    assert resp.headers["retry-after"] == "5" and err["retry_after"] == 5
    assert "POST /v1/jobs" in err["message"]
    assert jobs(client) == []


def test_a_bad_request_is_422_whether_or_not_a_worker_lives(client: TestClient) -> None:
    error_of(client.post("/v1/audio/speech", json=speech(voice="nobody")), 422, "unknown_voice")


def test_a_silent_worker_is_not_live(
    client: TestClient, worker_for: Callable[[TestClient], Worker]
) -> None:
    worker = worker_for(client)
    window = services(client).settings.jobs.worker_ready_seconds
    with services(client).store.session() as s:
        stale = utcnow() - timedelta(seconds=window + 1)
        s.execute(update(WorkerRow).where(WorkerRow.id == worker.id).values(heartbeat_at=stale))
    error_of(client.post("/v1/audio/speech", json=speech()), 503, "no_live_worker")


def test_a_repeat_of_a_recorded_call_is_answered_without_a_worker(
    client: TestClient, worker_for: Callable[[TestClient], Worker]
) -> None:
    worker = worker_for(client)
    ran = worker.later(worker.run)
    key = {"Idempotency-Key": "said-once"}
    body = speech(stream=False)
    first = client.post("/v1/audio/speech", json=body, headers=key)
    assert first.status_code == 200 and ran.result() == "succeeded"
    worker.close()  # its heartbeat row goes with it
    error_of(client.post("/v1/audio/speech", json=body), 503, "no_live_worker")
    again = client.post("/v1/audio/speech", json=body, headers=key)
    assert again.status_code == 200, again.text
    assert again.content == first.content
    assert again.headers["x-job-id"] == first.headers["x-job-id"]


def test_the_jobs_api_queues_anyway_and_says_how_many_workers_live(
    client: TestClient, worker_for: Callable[[TestClient], Worker]
) -> None:
    alone = client.post("/v1/jobs", json={"text": "Hello there."})
    assert alone.status_code == 202, alone.text
    assert alone.headers[LIVE] == "0"
    assert client.get(f"/v1/jobs/{alone.json()['id']}").json()["status"] == "queued"
    worker_for(client)
    served = client.post("/v1/jobs", json={"text": "Hello again."})
    assert served.status_code == 202 and served.headers[LIVE] == "1"


# --- shutting down ----------------------------------------------------------------------------


def test_a_new_call_while_shutting_down_is_503_and_records_nothing(
    client: TestClient, worker_for: Callable[[TestClient], Worker]
) -> None:
    worker_for(client)
    shutdown_of(app_of(client)).begin(30)
    resp = client.post("/v1/audio/speech", json=speech())
    err = error_of(resp, 503, "shutting_down")
    assert resp.headers["retry-after"] == "5"
    assert "job_id" not in err and jobs(client) == []


@pytest.mark.parametrize("stream", [False, True])
def test_a_waiting_call_answers_503_before_the_grace_ends(
    client: TestClient, worker_for: Callable[[TestClient], Worker], stream: bool
) -> None:
    """The job is running and will not be done in time: 503 with the job, which goes on."""
    worker = worker_for(client)
    grace = MARGIN_SECONDS + 0.5
    began: list[float] = []

    def claim_then_shut_down(claim: Claim) -> None:
        began.append(time.monotonic())
        shutdown_of(app_of(client)).begin(grace)

    held = worker.later(claim_then_shut_down)
    resp = client.post("/v1/audio/speech", json=speech(stream=stream))
    held.result()
    err = error_of(resp, 503, "shutting_down")
    assert time.monotonic() - began[0] < grace, "answered within the grace period"
    assert resp.headers["retry-after"] == "5"
    assert err["status"] == "running"
    assert client.get(f"/v1/jobs/{err['job_id']}").json()["status"] == "running"


def test_a_job_done_within_the_grace_is_answered_with_its_audio(
    client: TestClient, worker_for: Callable[[TestClient], Worker]
) -> None:
    worker = worker_for(client)

    def shut_down_then_run(claim: Claim) -> str:
        shutdown_of(app_of(client)).begin(MARGIN_SECONDS + 20)
        return worker.run(claim)

    ran = worker.later(shut_down_then_run)
    resp = client.post("/v1/audio/speech", json=speech(stream=False))
    assert ran.result() == "succeeded"
    assert resp.status_code == 200 and resp.content, resp.text
