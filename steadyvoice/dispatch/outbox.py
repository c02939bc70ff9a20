"""The outbox: a queued job is sent to the broker only after its row commits, and sent again
only when the broker has lost its message.

Every job row is the outbox entry: ``published_at`` is NULL until the job's message was handed
to the broker. Every send is *stamp, commit, send*: the row is stamped in a short transaction
of its own, the message goes out after the commit (no row lock is held while the broker is
slow or unreachable), and a send that fails clears the stamp again, so the reaper sends it.

- A submit sends its own job (or its batch's items) and nothing else: never the backlog.
  After a failed send, a circuit breaker skips the in-request sends for ``BREAKER_SECONDS``:
  those jobs stay unsent and the reaper sends them, so no request waits on a dead broker.
- The reaper (every ``jobs.reaper_interval_seconds``) sends the jobs never sent, oldest first,
  and re-sends only what the broker has actually lost: per queue, the jobs sent and still
  queued, minus the messages the broker holds for that queue, is the shortfall. Held means
  waiting in the queue's list, or delivered and not yet acknowledged for a job that is still
  queued, delivered less than ``republish_seconds`` ago. A delivered message whose job runs or
  ended holds no queued job; one whose job is still unclaimed long after its delivery was taken
  by a worker that died (the OOM killer, a lost host: Redis gives such a message back only
  after its visibility timeout, an hour), so its job counts as lost. The oldest jobs sent more than
  ``republish_seconds`` ago are sent again, at most the shortfall, and only a shortfall seen on
  two passes in a row counts (one pass can catch a submit between its commit and its send).
  A job merely waiting its turn in a long queue is never sent twice.

A message sent twice is still harmless: the worker's claim is fenced, so the second delivery
finds the job taken and is dropped (:mod:`steadyvoice.dispatch.consumer`).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import Celery
from sqlalchemy import ColumnElement, func, or_, select, text, update
from sqlalchemy.orm import Session

from steadyvoice.dispatch.celery_app import BATCH_SUFFIX, TASK, queue_for
from steadyvoice.jobs.dbclock import db_now
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.states import JobStatus
from steadyvoice.jobs.store import JobStore
from steadyvoice.observability import metrics
from steadyvoice.observability.logs import event

log = logging.getLogger("steadyvoice.dispatch")

DRAIN_LIMIT = 500  # jobs the reaper sends per pass; a longer backlog goes out over the next
# After a failed send, the in-request sends stop for this long (the reaper sends meanwhile).
BREAKER_SECONDS = 15.0
# One reaper at a time re-sends (several API processes): a PostgreSQL advisory lock.
_REPUBLISH_LOCK = 0x5E4D_0B0C
_UNACKED_KEY = "unacked"  # kombu's Redis transport: delivered, not yet acknowledged
_UNACKED_INDEX_KEY = "unacked_index"  # ... and when each was delivered


@dataclass(frozen=True)
class _Delivered:
    """A message the broker delivered to a worker and has not seen acknowledged."""

    queue: str
    job_id: str
    since: float  # when it was delivered (the consuming host's clock, Unix seconds)


@dataclass(frozen=True)
class _Stamped:
    job_id: str
    queue: str
    republished: bool


class Outbox:
    """The ``Dispatcher`` of ``dispatch.backend=celery``.

    ``notify(job_id)`` (a submit; ``job_id`` may name a batch) sends that job's message;
    ``notify("*")`` (the reaper) sends the unsent jobs and re-sends the lost ones."""

    def __init__(
        self,
        store: JobStore,
        app: Celery,
        republish_seconds: float,
        breaker_seconds: float = BREAKER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._app = app
        self._republish = timedelta(seconds=republish_seconds)
        self._breaker_seconds = breaker_seconds
        self._clock = clock
        self._closed_at = 0.0  # the breaker lets in-request sends through from then on
        self._shortfall: dict[str, int] = {}  # per queue, on the previous reaper pass

    def notify(self, job_id: str) -> None:
        if job_id == "*":
            self.drain()
        else:
            self.send_own(job_id)

    def send_own(self, job_id: str) -> int:
        """A submit: send the unsent job ``job_id`` (or the items of the batch it names);
        the number sent. Skipped while the breaker is open."""
        if self._clock() < self._closed_at:
            return 0
        own = or_(Job.id == job_id, Job.batch_id == job_id)
        sent = self._send(self._stamp([own, Job.published_at.is_(None)], limit=None))
        return sent

    def drain(self) -> int:
        """A reaper pass: send the jobs never sent (oldest first), then re-send those the
        broker lost; the number sent. Never raises for the broker."""
        sent = self._send(self._stamp([Job.published_at.is_(None)], limit=DRAIN_LIMIT))
        if sent == DRAIN_LIMIT:
            return sent  # a backlog still going out: nothing is "lost" before it is sent
        lost = self._lost()
        if lost is not None:
            sent += self._send(lost)
        metrics.set_dispatch_unpublished(self._unpublished())
        return sent

    # --- stamp, commit, send -------------------------------------------------------------

    def _stamp(self, where: list[ColumnElement[bool]], limit: int | None) -> list[_Stamped]:
        with self._store.session() as s:
            due = (
                select(Job.id, Job.engine, Job.lane)
                .where(Job.status == JobStatus.QUEUED.value, *where)
                .order_by(Job.created_at)
            )
            if limit is not None:
                due = due.limit(limit)
            return self._stamp_rows(s, due, republished=False)

    def _stamp_rows(self, s: Session, due: Any, republished: bool) -> list[_Stamped]:
        if s.get_bind().dialect.name == "postgresql":
            # Two API processes at once stamp each job once; nobody waits on a locked row.
            due = due.with_for_update(skip_locked=True)
        rows = s.execute(due).all()
        if rows:
            s.execute(
                update(Job)
                .where(Job.id.in_([job_id for job_id, _, _ in rows]))
                .values(published_at=db_now(s))
                .execution_options(synchronize_session=False)
            )
        return [
            _Stamped(job_id, queue_for(engine, lane), republished) for job_id, engine, lane in rows
        ]

    def _send(self, stamped: list[_Stamped]) -> int:
        """Send each stamped job (committed already); after the first failure, un-stamp it
        and the rest (the reaper sends them) and open the breaker."""
        for n, job in enumerate(stamped):
            try:
                self._app.send_task(TASK, args=[job.job_id], queue=job.queue)
            except Exception as exc:  # noqa: BLE001 - kombu/redis raise many kinds; all mean "not sent"
                self._failed(exc, [j.job_id for j in stamped[n:]])
                return n
            if job.republished:
                metrics.count_dispatch_republished()
                event(log, "job.republished", job_id=job.job_id, queue=job.queue)
        return len(stamped)

    def _failed(self, exc: Exception, unsent: list[str]) -> None:
        self._closed_at = self._clock() + self._breaker_seconds
        metrics.count_dispatch_publish_failure()
        event(
            log,
            "dispatch.broker_unavailable",
            level=logging.WARNING,
            job_id=unsent[0],
            unsent=len(unsent),
            error=type(exc).__name__,
        )
        try:
            with self._store.session() as s:
                s.execute(
                    update(Job)
                    .where(Job.id.in_(unsent))
                    .values(published_at=None)
                    .execution_options(synchronize_session=False)
                )
        except Exception:  # the store is away too: the broker count finds them later
            log.exception("could not clear the publish stamp")

    # --- what the broker lost ------------------------------------------------------------

    def _lost(self) -> list[_Stamped] | None:
        """The oldest jobs to send again, per queue at most the shortfall seen on this pass
        and the previous one; None when the broker cannot be counted."""
        with self._store.session() as s:
            if not _republish_lock(s):
                return None  # another API process's reaper is at it
            sent = {
                (engine, lane): int(count)
                for engine, lane, count in s.execute(
                    select(Job.engine, Job.lane, func.count())
                    .where(Job.status == JobStatus.QUEUED.value, Job.published_at.is_not(None))
                    .group_by(Job.engine, Job.lane)
                ).all()
            }
            counted = self._held({queue_for(engine, lane) for engine, lane in sent})
            if counted is None:
                return None
            held, delivered = counted
            for queue in self._delivered_for_queued(s, delivered):
                held[queue] = held.get(queue, 0) + 1
            now = db_now(s)
            lost: list[_Stamped] = []
            for (engine, lane), count in sorted(sent.items()):
                queue = queue_for(engine, lane)
                now_short = count - held.get(queue, 0)
                short = min(now_short, self._shortfall.get(queue, 0))
                self._shortfall[queue] = max(0, now_short)
                if short > 0:
                    lost += self._stamp_lost(s, (engine, lane), now, min(short, DRAIN_LIMIT))
            return lost

    def _stamp_lost(
        self, s: Session, queue: tuple[str, str], now: datetime, count: int
    ) -> list[_Stamped]:
        engine, lane = queue
        due = (
            select(Job.id, Job.engine, Job.lane)
            .where(
                Job.status == JobStatus.QUEUED.value,
                Job.engine == engine,
                Job.lane == lane,
                Job.published_at < now - self._republish,
            )
            .order_by(Job.published_at, Job.created_at)
            .limit(count)
        )
        return self._stamp_rows(s, due, republished=True)

    def _held(self, queues: set[str]) -> tuple[dict[str, int], list[_Delivered]] | None:
        """Messages waiting per queue, and those delivered to a worker and not yet
        acknowledged (``acks_late``: until its job ended) on these queues."""
        try:
            with self._app.pool.acquire(block=True, timeout=30) as conn:  # reused per pass
                channel = conn.default_channel
                waiting = {queue: int(channel._size(queue)) for queue in queues}
                delivered = [d for d in _delivered(channel) if d.queue in queues]
                return waiting, delivered
        except Exception as exc:  # noqa: BLE001 - any broker error: count again next pass
            event(log, "dispatch.broker_uncounted", level=logging.WARNING, error=type(exc).__name__)
            return None

    def _delivered_for_queued(self, s: Session, delivered: list[_Delivered]) -> list[str]:
        """The queue of each delivered message that still holds a queued job: delivered less
        than ``republish_seconds`` ago (by the broker's record), its job not yet claimed."""
        recent = self._republish.total_seconds()
        fresh = [d for d in delivered if time.time() - d.since < recent]
        if not fresh:
            return []
        queued = set(
            s.scalars(
                select(Job.id).where(
                    Job.id.in_([d.job_id for d in fresh]), Job.status == JobStatus.QUEUED.value
                )
            )
        )
        # A batch message's job is a hint (it claims the next item in turn): a fresh one may
        # be held at batch.max_running (dispatch.batch_hold_seconds, below republish_seconds)
        # for an item another message's claim left queued, so it counts whatever its job is.
        return [d.queue for d in fresh if d.job_id in queued or d.queue.endswith(BATCH_SUFFIX)]

    def _unpublished(self) -> int:
        try:
            with self._store.reading() as s:
                q = select(func.count()).where(
                    Job.status == JobStatus.QUEUED.value, Job.published_at.is_(None)
                )
                return int(s.scalar(q) or 0)
        except Exception:  # noqa: BLE001 - a gauge never fails a reaper pass
            return 0


def _delivered(channel: Any) -> list[_Delivered]:
    """Every delivered-unacknowledged message (kombu's Redis transport keeps them in a hash,
    with when each was delivered in a sorted set, until the ack; other transports: none)."""
    client = getattr(channel, "client", None)
    if client is None or not hasattr(client, "hgetall"):
        return []
    key = getattr(channel, "unacked_key", _UNACKED_KEY)
    index = getattr(channel, "unacked_index_key", _UNACKED_INDEX_KEY)
    since = {_text(tag): float(at) for tag, at in client.zrange(index, 0, -1, withscores=True)}
    found = []
    for tag, raw in client.hgetall(key).items():
        try:
            payload, _exchange, routing_key = json.loads(raw)
            job_id = _job_of(payload)
        except (ValueError, TypeError, KeyError, IndexError):
            continue  # not one of ours
        # No delivery time recorded (a half-written pair): as if just delivered.
        found.append(_Delivered(str(routing_key), job_id, since.get(_text(tag), time.time())))
    return found


def _job_of(payload: dict[str, Any]) -> str:
    """The job id a task message carries: its one argument (Celery's message protocol 2,
    the body a JSON ``[args, kwargs, embed]``, base64-encoded by kombu's Redis transport)."""
    body: Any = payload["body"]
    if payload.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args = json.loads(body)[0]
    return str(args[0])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _republish_lock(s: Session) -> bool:
    if s.get_bind().dialect.name != "postgresql":
        return True  # SQLite: one writer, one host
    got = s.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _REPUBLISH_LOCK})
    return bool(got)
