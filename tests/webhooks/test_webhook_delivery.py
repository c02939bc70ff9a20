"""Callbacks end to end: a real receiver on 127.0.0.1 gets signed calls, failures are retried
with backoff, every attempt is recorded, and a new sender (a restart) resumes from the rows."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from collections.abc import Callable, Iterator

import pytest
from factories import RESULT  # type: ignore[import-not-found]
from fastapi.testclient import TestClient
from processes import poll  # type: ignore[import-not-found]
from receiver import Receiver, receiver  # type: ignore[import-not-found]
from sqlalchemy import select

from steadyvoice.jobs.models import Job
from steadyvoice.jobs.store import JobStore
from steadyvoice.settings import Settings
from steadyvoice.webhooks import signing
from steadyvoice.webhooks.models import WebhookDelivery
from steadyvoice.webhooks.sender import WebhookSender

SECRET = "test-secret-of-the-default-tenant"


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


WEBHOOKS = {
    "allowed_hosts": ["127.0.0.1", "hooks.test"],
    "allow_private": True,  # the receiver is on loopback
    "secrets": {"default": SECRET},
    "retry_base_seconds": 0.05,
    "max_attempts": 4,
    "timeout_seconds": 5,
}


@pytest.fixture
def client(client_factory: Callable[..., TestClient]) -> TestClient:
    return client_factory(webhooks=WEBHOOKS)


def _store(client: TestClient) -> JobStore:
    store: JobStore = client.app.state.services.store  # type: ignore[attr-defined]
    return store


def _sender(client: TestClient, **kwargs: object) -> WebhookSender:
    settings: Settings = client.app.state.services.settings  # type: ignore[attr-defined]
    return WebhookSender(_store(client), settings, **kwargs)  # type: ignore[arg-type]


def _run_job(client: TestClient, url: str) -> str:
    """Submit a job with ``url`` as its callback and finish it as a worker would."""
    answer = client.post("/v1/jobs", json={"text": "Call me back.", "callback_url": url})
    assert answer.status_code == 202, answer.text
    store = _store(client)
    claim = store.claim("w:1", 30)
    assert claim is not None and store.complete(claim, RESULT)
    return str(answer.json()["id"])


def _attempts(store: JobStore, subject_id: str) -> list[WebhookDelivery]:
    with store.reading() as s:
        q = select(WebhookDelivery).where(WebhookDelivery.subject_id == subject_id)
        return list(s.scalars(q.order_by(WebhookDelivery.attempt)))


def _send_until(client: TestClient, job_id: str, state: str) -> None:
    """Sender rounds until the job's callback is ``state``; a new sender each round (a
    restart): what is due is read from the rows."""

    def reached() -> bool:
        _sender(client).run_once()
        return _state(_store(client), job_id) == state

    poll(reached, timeout=10, what=f"the callback to be {state}")


def _state(store: JobStore, job_id: str) -> str | None:
    return _store_job(store, job_id).webhook_state


def _store_job(store: JobStore, job_id: str) -> Job:
    with store.reading() as s:
        job = s.get(Job, job_id)
    assert job is not None
    return job


def test_a_finished_job_calls_back_signed(client: TestClient, hook: Receiver) -> None:
    store = _store(client)
    answer = client.post("/v1/jobs", json={"text": "Later.", "callback_url": hook.url()})
    job_id = answer.json()["id"]
    assert _sender(client).run_once() == 0  # not finished yet: nothing is called
    claim = store.claim("w:1", 30)
    assert claim is not None and store.complete(claim, RESULT)
    assert _sender(client).run_once() == 1

    [call] = hook.calls
    assert call.path == "/hook"
    assert signing.verify(SECRET, call.headers[signing.HEADER], call.body)
    # The same check as a receiver would write it, with nothing of ours.
    fields = dict(p.split("=", 1) for p in call.headers[signing.HEADER].split(","))
    mac = hmac.new(SECRET.encode(), f"{fields['t']}.".encode() + call.body, hashlib.sha256)
    assert hmac.compare_digest(mac.hexdigest(), fields["v1"])
    assert not signing.verify("another-secret", call.headers[signing.HEADER], call.body)
    assert not signing.verify(SECRET, call.headers[signing.HEADER], call.body + b" ")
    stale = int(fields["t"]) + signing.DEFAULT_TOLERANCE_SECONDS + 1
    assert not signing.verify(SECRET, call.headers[signing.HEADER], call.body, now=stale)

    body = json.loads(call.body)
    assert body["event"] == call.headers["Steadyvoice-Event"] == "job.finished"
    assert body["job"]["id"] == job_id and body["job"]["status"] == "succeeded"
    assert body["job"]["output"]["sha256"] == RESULT.sha256
    [attempt] = _attempts(store, job_id)
    assert (attempt.attempt, attempt.status_code, attempt.error) == (1, 204, None)
    assert attempt.address == "127.0.0.1" and attempt.url == hook.url()
    shown = client.get(f"/v1/jobs/{job_id}").json()
    assert (shown["webhook_state"], shown["callback_url"], shown["lane"]) == (
        "delivered",
        hook.url(),
        "interactive",
    )
    assert _sender(client).run_once() == 0  # delivered once, never again


def test_failures_are_retried_with_backoff_and_every_attempt_recorded(
    client: TestClient, hook: Receiver
) -> None:
    hook.fail_first = 2
    store = _store(client)
    job_id = _run_job(client, hook.url())

    _send_until(client, job_id, "delivered")
    attempts = _attempts(store, job_id)
    assert [(a.attempt, a.status_code, a.error) for a in attempts] == [
        (1, 500, "http_500"),
        (2, 500, "http_500"),
        (3, 204, None),
    ]
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1  # 0.05 s, then doubled
    assert [c.headers["Steadyvoice-Attempt"] for c in hook.calls] == ["1", "2", "3"]
    assert len({c.headers["Steadyvoice-Event-Id"] for c in hook.calls}) == 1


def test_a_receiver_that_never_answers_2xx_is_given_up_after_max_attempts(
    client: TestClient, hook: Receiver
) -> None:
    hook.fail_first = 100
    job_id = _run_job(client, hook.url())
    _send_until(client, job_id, "failed")
    assert [a.attempt for a in _attempts(_store(client), job_id)] == [1, 2, 3, 4]


def test_the_call_goes_to_the_address_that_was_checked(client: TestClient, hook: Receiver) -> None:
    """DNS pinning: the connection is made to the resolved address, the Host is the name."""
    store = _store(client)
    job_id = _run_job(client, hook.url(host="hooks.test"))  # a name no real DNS answers
    looked_up: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        looked_up.append(host)
        return ["127.0.0.1"]

    assert _sender(client, resolver=resolver).run_once() == 1
    assert looked_up == ["hooks.test"]
    assert hook.calls[0].headers["Host"] == f"hooks.test:{hook.port}"
    assert _state(store, job_id) == "delivered"


def test_a_batch_calls_back_once_all_its_items_are_finished(
    client: TestClient, hook: Receiver
) -> None:
    store = _store(client)
    items = [{"text": f"Item {row}."} for row in (1, 2, 3)]
    answer = client.post(
        "/v1/batches", json={"items": items}, params={"callback_url": hook.url("/batch")}
    )
    assert answer.status_code == 202, answer.text
    batch_id = answer.json()["id"]
    for _ in items[:2]:
        claim = store.claim("w:1", 30)
        assert claim is not None and store.complete(claim, RESULT)
    assert _sender(client).run_once() == 0  # one item still queued
    claim = store.claim("w:1", 30)
    assert claim is not None and store.fail(claim, "engine_error", "boom")
    assert _sender(client).run_once() == 1
    [call] = hook.calls
    body = json.loads(call.body)
    assert body["event"] == "batch.finished" and body["batch"]["id"] == batch_id
    assert body["batch"]["counts"] == {"succeeded": 2, "failed": 1}
    assert signing.verify(SECRET, call.headers[signing.HEADER], call.body)
    assert [a.status_code for a in _attempts(store, batch_id)] == [204]


def test_a_refused_batch_callback_records_nothing(client: TestClient) -> None:
    answer = client.post(
        "/v1/batches",
        json={"items": [{"text": "One."}]},
        params={"callback_url": "http://evil.example.net/x"},
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "callback_url_refused"
    assert client.get("/v1/batches").json()["items"] == []


def test_jobs_and_batches_call_back_on_postgresql(
    client_factory: Callable[..., TestClient], pg_url: str, hook: Receiver
) -> None:
    client = client_factory(webhooks=WEBHOOKS, database_url=pg_url)
    job_id = _run_job(client, hook.url("/job"))
    answer = client.post(
        "/v1/batches", json={"items": [{"text": "One."}]}, params={"callback_url": hook.url()}
    )
    assert answer.status_code == 202, answer.text
    assert _sender(client).run_once() == 1  # the job; the batch's item is still queued
    store = _store(client)
    claim = store.claim("w:1", 30)
    assert claim is not None and store.complete(claim, RESULT)
    hook.fail_first = 2  # the batch's first attempt fails: retried
    _send_until(client, job_id, "delivered")
    poll(lambda: _sender(client).run_once() and len(hook.calls) == 3, 10, "the batch callback")
    assert [json.loads(c.body)["event"] for c in hook.calls] == [
        "job.finished",
        "batch.finished",
        "batch.finished",
    ]


def test_a_retried_batch_calls_back_again_with_the_current_counts(
    client: TestClient, hook: Receiver
) -> None:
    store = _store(client)
    answer = client.post(
        "/v1/batches",
        json={"items": [{"text": "One."}, {"text": "Two."}]},
        params={"callback_url": hook.url()},
    )
    batch_id = answer.json()["id"]
    claim = store.claim("w:1", 30)
    assert claim is not None and store.fail(claim, "engine_error", "boom")
    claim = store.claim("w:1", 30)
    assert claim is not None and store.complete(claim, RESULT)
    assert _sender(client).run_once() == 1
    assert client.post(f"/v1/batches/{batch_id}/retry").json()["changed"] == 1
    assert client.get(f"/v1/batches/{batch_id}").json()["counts"]["queued"] == 1
    assert _sender(client).run_once() == 0  # re-armed, but not finished yet
    claim = store.claim("w:1", 30)
    assert claim is not None and store.complete(claim, RESULT)
    assert _sender(client).run_once() == 1
    ids = [c.headers["Steadyvoice-Event-Id"] for c in hook.calls]
    assert ids[0] != ids[1] and ids[0].startswith(f"batch.finished:{batch_id}:")
    first, second = (json.loads(c.body)["batch"]["counts"] for c in hook.calls)
    assert first == {"succeeded": 1, "failed": 1}
    # The failed job the retry replaced is not counted: as GET /v1/batches/{id} counts.
    shown = client.get(f"/v1/batches/{batch_id}").json()["counts"]
    assert second == {k: n for k, n in shown.items() if n} == {"succeeded": 2}
    assert [a.attempt for a in _attempts(store, batch_id)] == [1, 2]
