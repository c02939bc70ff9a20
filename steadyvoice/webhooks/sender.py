"""The webhook sender: finds finished jobs and batches whose callback is due, calls it, retries
with backoff and records every attempt in ``webhook_deliveries``.

It runs in each API process (a ``Periodic`` every ``webhooks.poll_seconds``). What is due comes
from the database alone (``webhook_state = 'pending'`` and ``webhook_next_at`` passed), so a
restart picks up every pending callback, and several API processes share the work.

Each attempt is taken alone, just before it is made: ``webhook_next_at`` moves a lease ahead
(the attempt's deadline plus a margin), guarded on its old value, and the attempt's row is
recorded in the same transaction with the next attempt number, so two processes never make the
same attempt or write the same number. The lease is renewed right before the POST, and the
outcome is written only while the lease is still ours: a process that lost it (it stalled past
its lease and another took the callback over) neither calls nor overwrites. The POST happens
outside any transaction, on up to ``DELIVERY_THREADS`` threads, so one slow receiver does not
hold up everyone else's callbacks.

A 2xx answer delivers it. Anything else (an error status, a 3xx, a timeout, a refused
connection) is retried after ``retry_base_seconds * 2**(attempt-1)`` (at most
``retry_max_seconds``) until ``max_attempts``, then the callback is ``failed``. An address the
SSRF check refuses, a URL no longer allowed or a tenant without a secret fails at once.
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, exists, func, or_, select, update
from sqlalchemy.orm import Session

from steadyvoice import __version__
from steadyvoice.batches.models import Batch
from steadyvoice.errors import CallbackUrlRefused
from steadyvoice.jobs.dbclock import db_now
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.states import TERMINAL, JobStatus
from steadyvoice.jobs.store import JobStore
from steadyvoice.observability import metrics
from steadyvoice.observability.logs import event
from steadyvoice.periodic import Periodic
from steadyvoice.settings import Settings
from steadyvoice.webhooks import payloads, signing, transport
from steadyvoice.webhooks.models import PENDING, WebhookDelivery
from steadyvoice.webhooks.urls import (
    AddressRefused,
    Resolver,
    host_allowed,
    parse,
    resolve,
    system_resolver,
)

log = logging.getLogger("steadyvoice.webhooks")

DELIVERED, FAILED = "delivered", "failed"
ROUND_LIMIT = 100  # attempts per round; the next round takes the rest
DELIVERY_THREADS = 4  # attempts made at once by one process
TAKE_TRIES = 5  # rows tried per take when other processes take them first
LEASE_MARGIN_SECONDS = 30.0  # past the attempt's deadline: the DNS lookup, the database
# What an attempt's row says until its outcome is written (if the process died meanwhile).
UNANSWERED = "no_outcome: the sender stopped during the attempt"
LEASE_LOST = "lease_lost: another process took the callback over; not sent"
IN_FLIGHT = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)

Subject = type[Job] | type[Batch]


@dataclass(frozen=True)
class Due:
    """One callback attempt, taken: this process alone makes it while ``lease`` holds."""

    kind: str  # "job" or "batch"
    subject_id: str
    tenant: str
    url: str
    event: str
    body: dict[str, Any]
    attempt: int
    delivery_id: int  # its row in webhook_deliveries
    lease: datetime  # webhook_next_at while the attempt is ours
    taken_at: datetime  # the database's time when it was taken


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    address: str | None
    final: bool  # no retry: refused before any connection
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender:
    """Delivers pending callbacks; ``run_once`` is one round, ``start`` runs rounds forever."""

    def __init__(
        self,
        store: JobStore,
        settings: Settings,
        resolver: Resolver = system_resolver,
        lease_margin_seconds: float = LEASE_MARGIN_SECONDS,
    ) -> None:
        self._store = store
        self._settings = settings
        self._cfg = settings.webhooks
        self._resolver = resolver
        self._lease_seconds = self._cfg.timeout_seconds + lease_margin_seconds
        self._turns = itertools.count()  # jobs and batches take turns at being looked at first
        self._rounds = Periodic("webhooks", self._cfg.poll_seconds, self.run_once, log)

    def start(self) -> None:
        self._rounds.start()

    def stop(self) -> None:
        self._rounds.stop()

    def run_once(self) -> int:
        """Make every callback due now (up to ``ROUND_LIMIT``); the number of attempts made."""
        first = self.take()
        if first is None:
            return 0
        made = 0
        lock = threading.Lock()

        def work(due: Due | None) -> None:
            nonlocal made
            while True:
                with lock:
                    if made >= ROUND_LIMIT:
                        return
                    made += 1
                # What was due when the round began: a retry falling due meanwhile waits.
                due = due or self.take(first.taken_at)
                if due is None:
                    with lock:
                        made -= 1
                    return
                self.deliver(due)
                due = None

        with ThreadPoolExecutor(DELIVERY_THREADS, thread_name_prefix="webhook") as pool:
            rounds = [pool.submit(work, first if n == 0 else None) for n in range(DELIVERY_THREADS)]
            for done in rounds:
                done.result()  # an error is raised here, for Periodic to log
        return made

    # --- what is due ----------------------------------------------------------------------

    def take(self, due_by: datetime | None = None) -> Due | None:
        """The next attempt due (at ``due_by``, else now), taken by this process; None if none."""
        tables: tuple[Subject, Subject] = (Job, Batch)
        if next(self._turns) % 2:
            tables = (Batch, Job)
        for table in tables:
            due = self._take(table, due_by)
            if due is not None:
                return due
        return None

    def _take(self, table: Subject, due_by: datetime | None) -> Due | None:
        with self._store.session() as s:
            now = db_now(s)
            lease = now + timedelta(seconds=self._lease_seconds)
            q = (
                select(table)
                .where(
                    table.webhook_state == PENDING, _due(table, due_by or now), *_finished(table)
                )
                .order_by(table.webhook_next_at)
                .limit(1)
                .with_for_update(skip_locked=True)  # PostgreSQL: senders pick different rows
            )
            for _ in range(TAKE_TRIES):
                row = s.scalar(q)
                if not isinstance(row, Job | Batch):  # None: nothing (more) is due
                    return None
                old = _due_at(table, row.webhook_next_at)
                if _move_lease(s, table, row.id, old, lease):
                    return self._record_attempt(s, row, lease, now)
                s.expire(row)  # another API process took it first: look again
        return None

    def _record_attempt(self, s: Session, row: Job | Batch, lease: datetime, now: datetime) -> Due:
        """The attempt's row, numbered after those recorded: numbered under the lease just
        taken, so no other process can be numbering an attempt of this callback now."""
        assert row.callback_url is not None
        kind = "job" if isinstance(row, Job) else "batch"
        recorded = s.scalar(
            select(func.count()).where(
                WebhookDelivery.kind == kind, WebhookDelivery.subject_id == row.id
            )
        )
        attempt = int(recorded or 0) + 1
        if isinstance(row, Job):
            event_name, body = payloads.JOB_FINISHED, payloads.job_body(row)
        else:
            event_name, body = payloads.BATCH_FINISHED, payloads.batch_body(s, row)
        delivery = WebhookDelivery(
            kind=kind,
            subject_id=row.id,
            tenant=row.tenant,
            event=event_name,
            url=row.callback_url,
            attempt=attempt,
            at=now,
            error=UNANSWERED,
        )
        s.add(delivery)
        s.flush()
        return Due(
            kind,
            row.id,
            row.tenant,
            row.callback_url,
            event_name,
            body,
            attempt,
            delivery.id,
            lease,
            now,
        )

    # --- one attempt ----------------------------------------------------------------------

    def deliver(self, due: Due) -> None:
        """Make the attempt ``due`` and write its outcome (while the lease is still ours)."""
        outcome, lease = self._call(due)
        with self._store.session() as s:
            now = db_now(s)
            s.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == due.delivery_id)
                .values(
                    address=outcome.address,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    duration_ms=outcome.duration_ms,
                )
            )
            state, next_at = self._next(outcome, due.attempt, now)
            table: Subject = Job if due.kind == "job" else Batch
            if outcome.error == LEASE_LOST:
                state = "lease_lost"
            else:
                kept = s.execute(
                    update(table)
                    .where(table.id == due.subject_id, table.webhook_state == PENDING)
                    .where(table.webhook_next_at == lease)
                    .values(webhook_state=state, webhook_next_at=next_at)
                    .execution_options(synchronize_session=False)
                ).rowcount  # type: ignore[attr-defined]
                if kept != 1:  # another process took it over: its outcome stands
                    log.warning("webhook %s %s: lease lost", due.kind, due.subject_id)
        event(
            log,
            "webhook.attempt",
            kind=due.kind,
            subject_id=due.subject_id,
            attempt=due.attempt,
            status_code=outcome.status_code,
            error=outcome.error,
            state=state,
        )
        if state != "lease_lost":  # nothing was sent
            metrics.observe_webhook(state if state != PENDING else "retry")

    def _next(self, outcome: Outcome, attempt: int, now: datetime) -> tuple[str, datetime | None]:
        if outcome.delivered:
            return DELIVERED, None
        if outcome.final or attempt >= self._cfg.max_attempts:
            return FAILED, None
        return PENDING, now + timedelta(seconds=backoff_seconds(self._settings, attempt))

    def _renewed(self, due: Due) -> datetime | None:
        """A new lease, a whole one from now, if the callback is still ours; else None."""
        table: Subject = Job if due.kind == "job" else Batch
        with self._store.session() as s:
            lease = db_now(s) + timedelta(seconds=self._lease_seconds)
            held = table.webhook_next_at == due.lease
            return lease if _move_lease(s, table, due.subject_id, held, lease) else None

    def _call(self, due: Due) -> tuple[Outcome, datetime]:
        """The attempt's outcome, and the lease it holds at the end."""
        started = time.monotonic()
        lease = due.lease

        def done(
            status: int | None, error: str | None, address: str | None = None, final: bool = False
        ) -> tuple[Outcome, datetime]:
            ms = int((time.monotonic() - started) * 1000)
            return Outcome(status, error, address, final, ms), lease

        secret = self._cfg.secrets.get(due.tenant)
        if secret is None:
            return done(None, "no_signing_secret", final=True)
        try:
            target = parse(due.url)
        except CallbackUrlRefused:
            return done(None, "malformed_url", final=True)
        if not host_allowed(target.host, self._cfg.allowed_hosts):
            return done(None, "host_not_allowed", final=True)
        try:
            address = resolve(target, self._cfg, self._resolver)
        except AddressRefused as exc:
            return done(None, f"address_refused: {exc}", final=True)
        except OSError as exc:  # DNS failure: may be passing, so retried
            return done(None, f"resolve_error: {exc}")
        # Renewed after the lookup (which may have been slow): the POST has a whole lease.
        renewed = self._renewed(due)
        if renewed is None:
            return done(None, LEASE_LOST, address)
        lease = renewed
        body = payloads.encode(due.body)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"steadyvoice/{__version__}",
            "Steadyvoice-Event": due.event,
            # The same on every attempt: a receiver that got an earlier one can ignore this.
            # A retried batch that finishes again says something new, so it has a new id.
            "Steadyvoice-Event-Id": event_id(due.event, due.subject_id, body),
            "Steadyvoice-Attempt": str(due.attempt),
            signing.HEADER: signing.signature(secret, int(time.time()), body),
        }
        try:
            answer = transport.post(target, address, body, headers, self._cfg.timeout_seconds)
        except TimeoutError:
            return done(None, "timeout", address)
        except (OSError, http.client.HTTPException) as exc:
            return done(None, f"connect_error: {type(exc).__name__}: {exc}"[:500], address)
        error = None if 200 <= answer.status < 300 else f"http_{answer.status}"
        return done(answer.status, error, address)


def event_id(event_name: str, subject_id: str, body: bytes) -> str:
    """``<event>:<id>:<digest of the body>``: the same for every attempt of one call."""
    return f"{event_name}:{subject_id}:{hashlib.sha256(body).hexdigest()[:16]}"


def backoff_seconds(settings: Settings, attempt: int) -> float:
    """The wait after failed attempt ``attempt`` (1, 2, ...): doubling, capped."""
    cfg = settings.webhooks
    return float(min(cfg.retry_max_seconds, cfg.retry_base_seconds * 2 ** (attempt - 1)))


def _due(table: Subject, now: datetime) -> ColumnElement[bool]:
    return or_(table.webhook_next_at.is_(None), table.webhook_next_at <= now)


def _due_at(table: Subject, at: datetime | None) -> ColumnElement[bool]:
    return table.webhook_next_at.is_(None) if at is None else table.webhook_next_at == at


def _move_lease(
    s: Session, table: Subject, subject_id: str, held: ColumnElement[bool], lease: datetime
) -> bool:
    """Move the pending callback's ``webhook_next_at`` to ``lease`` if ``held`` still holds."""
    moved = s.execute(
        update(table)
        .where(table.id == subject_id, table.webhook_state == PENDING, held)
        .values(webhook_next_at=lease)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    return bool(moved == 1)


def _finished(table: Subject) -> list[ColumnElement[bool]]:
    """A job in a final state; a batch with no item queued or running."""
    if table is Job:
        return [Job.status.in_([st.value for st in TERMINAL])]
    busy = exists().where(Job.batch_id == Batch.id, Job.status.in_(IN_FLIGHT))
    return [~busy]
