"""The outbox against an in-memory broker: a submit sends its own job only, the reaper re-sends
only what the broker lost, and a broker that fails opens the breaker instead of holding up
requests; and against a real Redis, a message a dead worker took is sent again. (Restarts and
flushes with real workers: test_celery_dispatch.py.)"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery_topology import RedisServer
from factories import new_job  # type: ignore[import-not-found]
from sqlalchemy import update

from steadyvoice.dispatch.celery_app import consumed
from steadyvoice.dispatch.outbox import Outbox
from steadyvoice.jobs.dbclock import db_now
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.store import JobStore

REPUBLISH = 60.0


class CountingApp(Celery):
    """A Celery app on ``memory://`` that counts the messages it sends, and can fail them."""

    def __init__(self) -> None:
        super().__init__("outbox-test", broker="memory://", set_as_current=False)
        self.sent = 0
        self.failing = False

    def send_task(self, *args: Any, **kwargs: Any) -> Any:
        if self.failing:
            raise ConnectionError("broker unreachable")
        self.sent += 1
        return super().send_task(*args, **kwargs)

    def held(self, queue: str) -> int:
        with self.connection_for_write() as conn:
            return int(conn.default_channel._size(queue))

    def flush(self, queue: str) -> None:
        with self.connection_for_write() as conn:
            conn.default_channel._purge(queue)


@pytest.fixture
def engine_name() -> str:
    """A queue of the test's own: the memory transport's queues are shared by the process."""
    return "fake" + uuid.uuid4().hex[:8]


def _queued(store: JobStore, engine: str, count: int) -> list[str]:
    return [store.create(new_job(f"job {n}.", engine=engine))[0].id for n in range(count)]


def _age(store: JobStore, ids: list[str]) -> None:
    """As if they were sent an hour ago (and still wait their turn)."""
    with store.session() as s:
        s.execute(
            update(Job)
            .where(Job.id.in_(ids))
            .values(published_at=db_now(s) - timedelta(hours=1))
            .execution_options(synchronize_session=False)
        )


def test_a_waiting_backlog_is_never_sent_twice_and_a_lost_one_is(
    store: JobStore, engine_name: str
) -> None:
    app = CountingApp()
    outbox = Outbox(store, app, REPUBLISH)
    backlog = _queued(store, engine_name, 40)
    assert outbox.drain() == 40  # never sent: the reaper sends them
    _age(store, backlog)

    new = _queued(store, engine_name, 1)[0]
    app.sent = 0
    outbox.notify(new)  # a submit sends its own job, never the backlog
    assert app.sent == 1 and store.get(new).published_at is not None
    for _ in range(3):  # all 41 are still in the broker: nothing is lost, nothing re-sent
        outbox.notify("*")
    assert app.sent == 1 and app.held(engine_name) == 41

    app.flush(engine_name)  # Redis flushed: every message is gone
    outbox.notify("*")  # one pass could be a race (a submit between commit and send)
    assert app.sent == 1
    outbox.notify("*")
    # The 40 that waited past republish_seconds go out again, once; the new one waits its turn.
    assert app.sent == 41 and app.held(engine_name) == 40
    outbox.notify("*")
    outbox.notify("*")
    assert app.sent == 41


def test_a_failed_send_is_left_to_the_reaper_and_opens_the_breaker(
    store: JobStore, engine_name: str
) -> None:
    app = CountingApp()
    now = [0.0]
    outbox = Outbox(store, app, REPUBLISH, breaker_seconds=10.0, clock=lambda: now[0])
    first, second = _queued(store, engine_name, 2)

    app.failing = True
    outbox.notify(first)
    assert store.get(first).published_at is None  # un-stamped: unsent, the reaper's to send

    app.failing = False
    outbox.notify(second)  # the breaker is open: no request waits on the broker
    assert app.sent == 0 and store.get(second).published_at is None
    now[0] = 11.0
    outbox.notify(second)
    assert app.sent == 1

    reaper = Outbox(store, app, REPUBLISH)
    assert reaper.drain() == 1  # the one the failure left
    assert store.get(first).published_at is not None and app.held(engine_name) == 2


def test_a_batch_submit_sends_its_own_items(store: JobStore, engine_name: str) -> None:
    app = CountingApp()
    outbox = Outbox(store, app, REPUBLISH)
    other = _queued(store, engine_name, 3)
    batch = uuid.uuid4().hex
    items = _queued(store, engine_name, 2)
    with store.session() as s:  # as the batch store records its items
        s.execute(update(Job).where(Job.id.in_(items)).values(batch_id=batch, lane="batch"))
    outbox.notify(batch)
    assert app.sent == 2
    # The batch lane's own queue: a worker takes from it only while `<engine>` is empty.
    assert (app.held(f"{engine_name}.batch"), app.held(engine_name)) == (2, 0)
    assert all(store.get(job_id).published_at is None for job_id in other)
    app.flush(f"{engine_name}.batch")
    _age(store, items)
    outbox.notify("*")  # sends the 3 never sent; the lost 2 need a second pass
    outbox.notify("*")
    assert app.sent == 2 + 3 + 2  # the lost items are counted per lane too
    assert (app.held(f"{engine_name}.batch"), app.held(engine_name)) == (2, 3)


def test_a_requeued_job_is_unsent_again(store: JobStore, engine_name: str) -> None:
    app = CountingApp()
    job_id = _queued(store, engine_name, 1)[0]
    Outbox(store, app, REPUBLISH).notify(job_id)
    assert store.claim_job(job_id, "w1", 60.0) is not None
    assert store.release_worker("w1", max_attempts=3).requeued == [job_id]
    # The reaper sends it at once rather than after republish_seconds.
    assert store.get(job_id).published_at is None


def test_workers_take_the_interactive_queues_first() -> None:
    assert consumed(["piper", "cosyvoice"]) == [
        "piper",
        "cosyvoice",
        "piper.batch",
        "cosyvoice.batch",
    ]
    assert consumed(["piper.batch"]) == ["piper.batch"]  # a host for batch work alone


# --- against a real Redis: a message delivered to a worker and never acknowledged holds its job
# only while that worker can still be running it. A worker main SIGKILLed (the OOM killer, a
# lost host) leaves its message in kombu's delivered-unacknowledged hash, which Redis gives back
# only after its visibility timeout (an hour). Counted as held, such a message hid its job from
# the reaper for that hour; messages of running jobs (acknowledged when they end) hid lost ones
# the same way.


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(Path(tmp_path_factory.mktemp("redis")) / "redis.log")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def app(redis_server: RedisServer) -> Iterator[Celery]:
    redis_server.client().flushall()
    app = Celery("outbox-delivered-test", broker=redis_server.url, set_as_current=False)
    yield app
    app.close()


def _running(store: JobStore, job_id: str) -> None:
    with store.session() as s:
        s.execute(update(Job).where(Job.id == job_id).values(status="running"))


class DeadWorker:
    """Takes messages as a Celery worker does (delivered, unacknowledged), then dies: the
    connection is dropped, never closed, so kombu does not put the messages back."""

    def __init__(self, app: Celery) -> None:
        self.conn = app.connection_for_write()
        self.channel = self.conn.default_channel
        self.tags: list[str] = []

    def take(self, queue: str) -> None:
        message = self.channel.basic_get(queue, no_ack=False)
        assert message is not None, f"no message on {queue}"
        self.tags.append(message.delivery_tag)

    def delivered_ago(self, redis_server: RedisServer, seconds: float) -> None:
        """As if every message it took was delivered ``seconds`` ago."""
        at = time.time() - seconds
        redis_server.client().zadd("unacked_index", {tag: at for tag in self.tags})


@pytest.fixture
def dead_worker(app: Celery) -> Iterator[DeadWorker]:
    worker = DeadWorker(app)
    yield worker
    worker.conn.release()  # after the test, before its Redis server stops


def _waiting(redis_server: RedisServer, queue: str) -> int:
    return int(redis_server.client().llen(queue))


def test_a_message_taken_by_a_dead_worker_is_sent_again(
    store: JobStore,
    app: Celery,
    redis_server: RedisServer,
    engine_name: str,
    dead_worker: DeadWorker,
) -> None:
    outbox = Outbox(store, app, REPUBLISH)
    (job,) = _queued(store, engine_name, 1)
    assert outbox.drain() == 1
    worker = dead_worker
    worker.take(engine_name)
    _age(store, [job])

    for _ in range(3):  # just delivered: the worker may be claiming it now
        assert outbox.drain() == 0
    assert _waiting(redis_server, engine_name) == 0

    worker.delivered_ago(redis_server, REPUBLISH + 1)  # and its job never claimed
    assert outbox.drain() == 0  # one pass could race a claim
    assert outbox.drain() == 1
    assert _waiting(redis_server, engine_name) == 1
    assert outbox.drain() == 0 and outbox.drain() == 0  # once


def test_messages_of_running_jobs_do_not_hide_a_lost_one(
    store: JobStore,
    app: Celery,
    redis_server: RedisServer,
    engine_name: str,
    dead_worker: DeadWorker,
) -> None:
    outbox = Outbox(store, app, REPUBLISH)
    running, lost = _queued(store, engine_name, 2)
    assert outbox.drain() == 2
    worker = dead_worker  # alive, in truth: its job runs and is acknowledged at the end
    worker.take(engine_name)
    _running(store, running)
    redis_server.client().delete(engine_name)  # the other message is lost
    _age(store, [running, lost])

    assert outbox.drain() == 0
    assert outbox.drain() == 1
    assert store.get(lost).published_at is not None
    assert _waiting(redis_server, engine_name) == 1
    assert outbox.drain() == 0
