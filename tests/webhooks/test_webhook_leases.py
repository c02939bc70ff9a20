"""Several senders (API processes) sharing callbacks: each is POSTed once, attempts are
numbered apart, a sender that lost its lease neither calls nor overwrites; and one attempt
takes at most ``timeout_seconds`` in all, even against a receiver that dribbles its answer."""

from __future__ import annotations

import socket
import threading
import time
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
from steadyvoice.webhooks.models import WebhookDelivery
from steadyvoice.webhooks.sender import LEASE_LOST, WebhookSender

WEBHOOKS = {
    "allowed_hosts": ["127.0.0.1"],
    "allow_private": True,  # the receivers are on loopback
    "secrets": {"default": "lease-test-secret"},
    "retry_base_seconds": 0.05,
    "timeout_seconds": 1,
}


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def _store(client: TestClient) -> JobStore:
    store: JobStore = client.app.state.services.store  # type: ignore[attr-defined]
    return store


def _sender(client: TestClient, margin: float = 0.0) -> WebhookSender:
    settings: Settings = client.app.state.services.settings  # type: ignore[attr-defined]
    return WebhookSender(_store(client), settings, lease_margin_seconds=margin)


def _finished_jobs(client: TestClient, url: str, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        answer = client.post("/v1/jobs", json={"text": "Call me back.", "callback_url": url})
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["id"])
    store = _store(client)
    for _ in range(n):
        claim = store.claim("w:1", 30)
        assert claim is not None and store.complete(claim, RESULT)
    return ids


def _attempts(store: JobStore) -> list[WebhookDelivery]:
    with store.reading() as s:
        q = select(WebhookDelivery).order_by(WebhookDelivery.subject_id, WebhookDelivery.attempt)
        return list(s.scalars(q))


def _states(store: JobStore, ids: list[str]) -> set[str | None]:
    with store.reading() as s:
        return {s.get(Job, i).webhook_state for i in ids}  # type: ignore[union-attr]


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_two_senders_and_a_slow_receiver_post_each_callback_once(
    client_factory: Callable[..., TestClient],
    request: pytest.FixtureRequest,
    hook: Receiver,
    database: str,
) -> None:
    """The lease is the attempt's deadline alone (no margin): taking many rows at once and
    calling them one after another would let the other sender take them again."""
    extra = {"database_url": request.getfixturevalue("pg_url")} if database == "postgresql" else {}
    client = client_factory(webhooks=WEBHOOKS, **extra)
    hook.delay = 0.3
    ids = _finished_jobs(client, hook.url(), 10)
    store = _store(client)

    def rounds(sender: WebhookSender) -> None:  # as its Periodic would, until all are done
        poll(lambda: sender.run_once() == 0 and _states(store, ids) == {"delivered"}, 30, "all")

    senders = [threading.Thread(target=rounds, args=(_sender(client),)) for _ in range(2)]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join(30)
    called = [c.headers["Steadyvoice-Event-Id"].split(":")[1] for c in hook.calls]
    assert sorted(called) == sorted(ids)
    assert [(a.attempt, a.status_code) for a in _attempts(store)] == [(1, 204)] * len(ids)
    assert _states(store, ids) == {"delivered"}


def test_a_sender_that_lost_its_lease_neither_calls_nor_overwrites(
    client_factory: Callable[..., TestClient], hook: Receiver
) -> None:
    client = client_factory(webhooks={**WEBHOOKS, "timeout_seconds": 0.2})
    [job_id] = _finished_jobs(client, hook.url(), 1)
    slow, other = _sender(client), _sender(client)
    stalled = slow.take()  # ... and then the process stalls past its lease
    assert stalled is not None and stalled.attempt == 1
    taken_over = poll(other.take, 10, "the lease to lapse")
    assert taken_over.attempt == 2  # numbered after the stalled one, not the same
    other.deliver(taken_over)
    slow.deliver(stalled)  # wakes up: its lease is gone
    assert len(hook.calls) == 1 and hook.calls[0].headers["Steadyvoice-Attempt"] == "2"
    store = _store(client)
    assert [(a.attempt, a.status_code, a.error) for a in _attempts(store)] == [
        (1, None, LEASE_LOST),
        (2, 204, None),
    ]
    assert _states(store, [job_id]) == {"delivered"}  # not overwritten by the stalled sender


@pytest.fixture
def dribbler() -> Iterator[int]:
    """A receiver that answers one byte every 0.1 s, for ever: each read is quick."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000:
                    if stop.wait(0.1):
                        return
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:
                        break  # the sender hung up: its deadline

    thread = threading.Thread(target=serve, name="dribbler", daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        server.close()


def test_an_attempt_has_one_deadline_however_the_receiver_dribbles(
    client_factory: Callable[..., TestClient], dribbler: int
) -> None:
    client = client_factory(webhooks={**WEBHOOKS, "max_attempts": 1})
    [job_id] = _finished_jobs(client, f"http://127.0.0.1:{dribbler}/hook", 1)
    started = time.monotonic()
    assert _sender(client, margin=30).run_once() == 1
    took = time.monotonic() - started
    [attempt] = _attempts(_store(client))
    assert attempt.error == "timeout" and attempt.status_code is None
    assert 0.9 <= took < 2.5 and attempt.duration_ms is not None and attempt.duration_ms < 2000
    assert _states(_store(client), [job_id]) == {"failed"}
