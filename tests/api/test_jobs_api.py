"""The job routes, in process: status codes, error codes and bodies exactly as documented."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from datetime import timedelta, timezone
from typing import Any, cast

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from http_checks import error_of  # type: ignore[import-not-found]

from steadyvoice.api.deps import Services
from steadyvoice.audio.wav import encode_wav
from steadyvoice.jobs.store import Result

HELLO = {"text": "Hello there."}


def services(client: TestClient) -> Services:
    app = cast(FastAPI, client.app)
    svc: Services = app.state.services
    return svc


def submit(client: TestClient, body: dict[str, Any] | None = None, **headers: str) -> str:
    resp = client.post("/v1/jobs", json=body or HELLO, headers=headers)
    assert resp.status_code == 202, resp.text
    job_id: str = resp.json()["id"]
    return job_id


def succeed(client: TestClient, job_id: str) -> str:
    """Do what a worker does: claim, write a real WAV through storage, complete."""
    svc = services(client)
    claim = svc.store.claim("test:1", 30)
    assert claim is not None and claim.job.id == job_id
    samples = np.sin(np.linspace(0, 40, 1600)).astype(np.float32) * 0.3
    sha, size = svc.storage.write_atomic(claim.job.output_name, encode_wav(samples, 16_000))
    assert svc.store.complete(claim, Result("fake-1+sr16000", 16_000, 0.1, sha, size))
    return sha


# --- submitting ---------------------------------------------------------------------------


def test_submit_answers_202_with_a_location(client: TestClient) -> None:
    resp = client.post("/v1/jobs", json=HELLO)
    assert resp.status_code == 202
    body = resp.json()
    assert re.fullmatch(r"[0-9a-f]{32}", body["id"])
    assert resp.headers["location"] == f"/v1/jobs/{body['id']}"
    assert body["status"] == "queued"
    assert body["text"] == "Hello there."
    assert body["voice"] == "alpha"
    assert body["params"] == {
        "seed": 42,
        "speed": 1.0,
        "format": "wav",
        "text_normalization": "en-1",
    }
    assert body["engine"] == "fake"
    assert body["engine_version"] == "fake-2+split-clause1+sr16000"
    assert body["requester"] == client.get("/v1/me").json()["key_id"]
    assert body["tenant"] == "default"
    assert body["attempts"] == 0
    assert body["error"] is None and body["output"] is None
    assert body["started_at"] is None and body["finished_at"] is None
    assert client.get(resp.headers["location"]).json() == body


def test_submit_keeps_the_given_parameters(client: TestClient) -> None:
    body = {"text": "  Padded.  ", "voice": "beta", "seed": 0, "speed": 1.5, "format": "wav"}
    resp = client.post("/v1/jobs", json=body)
    assert resp.status_code == 202
    job = resp.json()
    assert job["text"] == "Padded."
    assert job["voice"] == "beta"
    assert job["params"] == {
        "seed": 0,
        "speed": 1.5,
        "format": "wav",
        "text_normalization": "en-1",
    }


def test_a_repeated_idempotency_key_returns_the_first_job(client: TestClient) -> None:
    first = submit(client, HELLO, **{"Idempotency-Key": "abc"})
    again = client.post("/v1/jobs", json=HELLO, headers={"Idempotency-Key": "abc"})
    assert again.status_code == 202
    assert again.json()["id"] == first
    assert again.headers["location"] == f"/v1/jobs/{first}"
    assert submit(client, HELLO, **{"Idempotency-Key": "other"}) != first
    assert submit(client, HELLO) != first


def test_an_idempotency_key_reused_for_another_body_is_409(client: TestClient) -> None:
    first = submit(client, HELLO, **{"Idempotency-Key": "abc"})
    resp = client.post(
        "/v1/jobs", json={"text": "Something else."}, headers={"Idempotency-Key": "abc"}
    )
    err = error_of(resp, 409, "idempotency_key_reused")
    assert err["job_id"] == first


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_text_is_422_text_empty(client: TestClient, text: str) -> None:
    error_of(client.post("/v1/jobs", json={"text": text}), 422, "text_empty")


def test_text_over_the_limit_is_422_text_too_long(
    client_factory: Callable[..., TestClient],
) -> None:
    client = client_factory(api={"max_text_chars": 20})
    assert client.post("/v1/jobs", json={"text": "  " + "a" * 20 + "  "}).status_code == 202
    err = error_of(client.post("/v1/jobs", json={"text": "a" * 21}), 422, "text_too_long")
    assert err["limit"] == 20 and err["chars"] == 21


def test_unknown_voice_is_422(client: TestClient) -> None:
    err = error_of(
        client.post("/v1/jobs", json={"text": "Hi.", "voice": "nobody"}), 422, "unknown_voice"
    )
    assert err["voice"] == "nobody"
    assert err["available"] == ["alpha", "beta"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "Hi.", "speed": 0}, "speed"),
        ({"text": "Hi.", "speed": 10}, "speed"),
        ({"text": "Hi.", "seed": -1}, "seed"),
        ({"text": "Hi.", "seed": 2**32}, "seed"),
        ({"text": "Hi.", "format": 5}, "format"),  # an unknown name: test_clear_errors.py
        ({"text": "Hi.", "colour": "blue"}, "colour"),
        ({"voice": "alpha"}, "text"),
        ({"text": 5}, "text"),
    ],
)
def test_invalid_bodies_are_422_invalid_request(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    err = error_of(client.post("/v1/jobs", json=body), 422, "invalid_request")
    assert field in [f["field"] for f in err["fields"]]
    assert all(f["problem"] for f in err["fields"])


@pytest.mark.parametrize("content", [b"not json", b"", b"[1, 2]", b'{"text": "unterminated'])
def test_bodies_that_are_not_a_json_object_are_422(client: TestClient, content: bytes) -> None:
    resp = client.post("/v1/jobs", content=content, headers={"content-type": "application/json"})
    error_of(resp, 422, "invalid_request")


def test_a_body_over_the_limit_is_413(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory(api={"max_body_bytes": 2048})
    big = {"text": "a" * 5000}
    resp = client.post("/v1/jobs", json=big)
    assert error_of(resp, 413, "body_too_large")["limit"] == 2048
    assert client.get("/v1/jobs").json()["items"] == []


def test_a_streamed_body_over_the_limit_is_413(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory(api={"max_body_bytes": 2048})

    def chunks() -> Any:
        yield b'{"text": "'
        for _ in range(10):
            yield b"a" * 500
        yield b'"}'

    resp = client.post("/v1/jobs", content=chunks(), headers={"content-type": "application/json"})
    error_of(resp, 413, "body_too_large")
    assert client.get("/v1/jobs").json()["items"] == []


# --- reading ------------------------------------------------------------------------------


def test_an_unknown_job_is_404(client: TestClient) -> None:
    err = error_of(client.get("/v1/jobs/nope"), 404, "job_not_found")
    assert err["job_id"] == "nope"
    error_of(client.get("/v1/jobs/nope/audio"), 404, "job_not_found")
    error_of(client.post("/v1/jobs/nope/cancel"), 404, "job_not_found")


def test_an_unknown_route_is_a_json_404(client: TestClient) -> None:
    error_of(client.get("/v2/nothing"), 404, "not_found")


def test_a_wrong_method_is_a_json_405(client: TestClient) -> None:
    resp = client.delete("/v1/jobs")
    error_of(resp, 405, "method_not_allowed")
    # Starlette names the methods of the first route matching the path (POST here).
    assert "POST" in resp.headers["allow"]


def test_audio_of_a_queued_job_is_409(client: TestClient) -> None:
    job_id = submit(client)
    err = error_of(client.get(f"/v1/jobs/{job_id}/audio"), 409, "audio_not_ready")
    assert err["status"] == "queued"


def test_audio_of_a_succeeded_job(client: TestClient) -> None:
    job_id = submit(client)
    sha = succeed(client, job_id)
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded"
    output = job["output"]
    assert output["sha256"] == sha
    assert output["url"] == f"/v1/jobs/{job_id}/audio"
    assert output["sample_rate"] == 16_000
    assert re.fullmatch(r"output_\d{8}_\d{6}_[0-9a-f]{12}\.wav", output["name"])

    resp = client.get(output["url"])
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "audio/wav"
    assert resp.headers["x-content-sha256"] == sha
    assert hashlib.sha256(resp.content).hexdigest() == sha
    assert len(resp.content) == output["size_bytes"]
    assert resp.content[:4] == b"RIFF"
    assert output["name"] in resp.headers["content-disposition"]


def test_an_uncached_conversion_is_sent_whole_and_leaves_no_file(
    client_factory: Callable[..., TestClient],
) -> None:
    """conversion.cache_bytes=0: each conversion is a temporary file, unlinked as it is opened
    for sending, so nothing is left behind even when a client hangs up."""
    client = client_factory(conversion={"cache_bytes": 0})
    job_id = submit(client)
    succeed(client, job_id)
    first, second = (client.get(f"/v1/jobs/{job_id}/audio?format=flac") for _ in range(2))
    for resp in (first, second):
        assert resp.status_code == 200, resp.text
        assert resp.headers["x-conversion-cache"] == "miss"
        assert int(resp.headers["content-length"]) == len(resp.content)
        assert resp.content[:4] == b"fLaC" and ".flac" in resp.headers["content-disposition"]
    assert first.content == second.content
    left = services(client).settings.data_dir / "conversions"
    assert not [p for p in left.rglob("*") if p.is_file()]


def test_audio_whose_file_is_gone_is_410(client: TestClient) -> None:
    job_id = submit(client)
    succeed(client, job_id)
    svc = services(client)
    svc.storage.delete(svc.store.get(job_id).output_name)
    err = error_of(client.get(f"/v1/jobs/{job_id}/audio"), 410, "output_missing")
    assert err["job_id"] == job_id


# --- canceling ----------------------------------------------------------------------------


def test_cancel_a_queued_job_then_again(client: TestClient) -> None:
    job_id = submit(client)
    resp = client.post(f"/v1/jobs/{job_id}/cancel")
    assert resp.status_code == 200
    assert resp.json()["status"] == "canceled"
    assert resp.json()["finished_at"] is not None
    err = error_of(client.post(f"/v1/jobs/{job_id}/cancel"), 409, "job_not_cancelable")
    assert err["status"] == "canceled"
    error_of(client.get(f"/v1/jobs/{job_id}/audio"), 409, "audio_not_ready")


def test_a_succeeded_job_cannot_be_canceled(client: TestClient) -> None:
    job_id = submit(client)
    succeed(client, job_id)
    error_of(client.post(f"/v1/jobs/{job_id}/cancel"), 409, "job_not_cancelable")
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded"


# --- listing ------------------------------------------------------------------------------


def test_list_filters_by_status(client: TestClient) -> None:
    ids = [submit(client, {"text": f"Job {n}."}) for n in range(3)]
    client.post(f"/v1/jobs/{ids[1]}/cancel")
    queued = client.get("/v1/jobs", params={"status": "queued"}).json()
    assert [j["id"] for j in queued["items"]] == [ids[2], ids[0]]
    canceled = client.get("/v1/jobs", params={"status": "canceled"}).json()
    assert [j["id"] for j in canceled["items"]] == [ids[1]]
    assert canceled["next_cursor"] is None
    error_of(client.get("/v1/jobs", params={"status": "lost"}), 422, "invalid_request")


def test_list_filters_by_creation_time(client: TestClient) -> None:
    ids = [submit(client, {"text": f"Job {n}."}) for n in range(3)]
    middle = client.get(f"/v1/jobs/{ids[1]}").json()["created_at"]
    after = client.get("/v1/jobs", params={"created_after": middle}).json()
    assert [j["id"] for j in after["items"]] == [ids[2], ids[1]]
    before = client.get("/v1/jobs", params={"created_before": middle}).json()
    assert [j["id"] for j in before["items"]] == [ids[0]]
    # The same instant written in another timezone selects the same jobs.
    svc = services(client)
    at = svc.store.get(ids[1]).created_at
    shifted = at.astimezone(timezone(timedelta(hours=5))).isoformat()
    assert shifted.endswith("+05:00")
    again = client.get("/v1/jobs", params={"created_after": shifted}).json()
    assert [j["id"] for j in again["items"]] == [ids[2], ids[1]]


@pytest.mark.parametrize("name", ["created_after", "created_before"])
def test_a_naive_time_filter_is_422(client: TestClient, name: str) -> None:
    err = error_of(
        client.get("/v1/jobs", params={name: "2024-01-01T00:00:00"}), 422, "invalid_request"
    )
    assert err["field"] == name
    error_of(client.get("/v1/jobs", params={name: "yesterday"}), 422, "invalid_request")


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!",
        "abc",
        base64.urlsafe_b64encode(b"no-bar").decode(),
        base64.urlsafe_b64encode(b"2024-01-01T00:00:00|abc").decode(),  # no time zone
    ],
)
def test_a_bad_cursor_is_422(client: TestClient, cursor: str) -> None:
    err = error_of(client.get("/v1/jobs", params={"cursor": cursor}), 422, "invalid_cursor")
    assert err["field"] == "cursor"


@pytest.mark.parametrize("limit", ["0", "501", "ten"])
def test_a_bad_limit_is_422(client: TestClient, limit: str) -> None:
    error_of(client.get("/v1/jobs", params={"limit": limit}), 422, "invalid_request")


def test_list_pages_follow_next_cursor(client: TestClient) -> None:
    ids = [submit(client, {"text": f"Job {n}."}) for n in range(5)]
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    pages = 0
    while True:
        page = client.get("/v1/jobs", params=params).json()
        pages += 1
        seen.extend(j["id"] for j in page["items"])
        if page["next_cursor"] is None:
            break
        params = {"limit": 2, "cursor": page["next_cursor"]}
    assert pages == 3
    assert seen == ids[::-1]


@pytest.mark.parametrize("field", [{"instructions": "happy"}, {"cross_lingual": True}])
def test_modes_the_engine_lacks_are_refused(client: TestClient, field: dict[str, Any]) -> None:
    r = client.post("/v1/jobs", json={"text": "Hello there.", **field})
    error = error_of(r, 422, "invalid_request")
    assert error["engine"] == "fake"
    assert client.get("/v1/jobs").json()["items"] == []
