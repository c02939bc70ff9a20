"""PostgreSQL LISTEN/NOTIFY as the doorbell, for workers on any host.

The Unix-socket doorbell (``jobs.dispatch``) only reaches workers on the API's own host; a
standalone worker elsewhere would wait for its next poll. When the store is PostgreSQL (and
Celery does not carry the messages), the API sends ``NOTIFY steadyvoice_jobs`` once a job has
committed, and every worker ``LISTEN`` s on a connection of its own, so it claims at once.

As with the socket doorbell, a ring only says "look now": the claim is the same fenced store
call, so a lost, late or duplicated notification delays a job by one poll at most, never loses
it or runs it twice. Polling stays the safety net, and a broken listening connection falls back
to it until a reconnect succeeds.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any, Protocol

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from steadyvoice.jobs import pgguards
from steadyvoice.jobs.dispatch import Dispatcher, Doorbell, DoorbellDispatcher
from steadyvoice.jobs.store import JobStore
from steadyvoice.observability.logs import event
from steadyvoice.settings import DatabaseSettings, Settings

log = logging.getLogger("steadyvoice.doorbell")

CHANNEL = "steadyvoice_jobs"
RECONNECT_SECONDS = 5.0  # after a failed connect, poll only this long before trying again
# A wait is cut into slices this long, so a stop request is seen without a ring (SIGTERM does not
# interrupt psycopg's wait).
_SLICE_SECONDS = 0.5
_CONNECT_TIMEOUT_SECONDS = 5


class Bell(Protocol):
    """The worker's end of a doorbell: wait until rung or until the timeout passes."""

    def wait(self, timeout: float) -> bool: ...

    def close(self) -> None: ...


def uses_notify(settings: Settings) -> bool:
    """NOTIFY rings the workers: a PostgreSQL store, and no Celery carrying the messages."""
    celery = settings.dispatch.backend == "celery"
    return settings.resolved_database_url.startswith("postgresql") and not celery


def job_dispatcher(settings: Settings, store: JobStore) -> Dispatcher:
    """The API's end: NOTIFY on PostgreSQL, else this host's socket doorbell."""
    if uses_notify(settings):
        return NotifyDispatcher(store)
    return DoorbellDispatcher(settings.run_dir)


def worker_bell(settings: Settings, stop: threading.Event) -> Bell:
    """The worker's end matching ``job_dispatcher``."""
    if uses_notify(settings):
        return ListeningBell(settings.resolved_database_url, settings.database, stop)
    return Doorbell(settings.run_dir)


class NotifyDispatcher:
    """Sends ``NOTIFY steadyvoice_jobs, '<job id>'`` after the job row has committed."""

    def __init__(self, store: JobStore) -> None:
        self._store = store

    def notify(self, job_id: str) -> None:
        try:
            with self._store.engine.connect() as conn:
                conn.execute(
                    text("SELECT pg_notify(:channel, :job)"), {"channel": CHANNEL, "job": job_id}
                )
                conn.commit()
        except SQLAlchemyError as exc:  # the workers' polls find the job anyway
            event(log, "doorbell.notify_failed", level=logging.WARNING, error=type(exc).__name__)


def conninfo(url: str) -> str:
    """The libpq form of a SQLAlchemy ``postgresql+psycopg://`` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class ListeningBell:
    """A worker's ``LISTEN steadyvoice_jobs`` connection (opened on first wait, reopened after
    a failure at most every ``RECONNECT_SECONDS``)."""

    def __init__(self, url: str, guards: DatabaseSettings, stop: threading.Event) -> None:
        self._url = url
        self._params: dict[str, Any] = pgguards.connect_args(url, guards)
        self._stop = stop
        self._conn: psycopg.Connection[Any] | None = None
        self._failed_at: float | None = None
        # Listening before the worker reports ready: a job queued between its first claim and
        # a lazy LISTEN would otherwise wait a whole poll.
        self._listening()

    def wait(self, timeout: float) -> bool:
        """True if rung; pending rings are drained, so one wake-up serves them all."""
        deadline = time.monotonic() + timeout
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            conn = self._listening()
            if conn is None:  # polling only, for now
                self._stop.wait(min(left, _SLICE_SECONDS))
                continue
            try:
                if next(conn.notifies(timeout=min(left, _SLICE_SECONDS), stop_after=1), None):
                    for _ in conn.notifies(timeout=0):
                        pass
                    return True
            except psycopg.Error as exc:
                self._lost(exc)
        return False

    def _listening(self) -> psycopg.Connection[Any] | None:
        if self._conn is not None:
            return self._conn
        if self._failed_at is not None and time.monotonic() - self._failed_at < RECONNECT_SECONDS:
            return None
        try:
            conn = psycopg.connect(
                conninfo(self._url),
                autocommit=True,
                connect_timeout=_CONNECT_TIMEOUT_SECONDS,
                **self._params,
            )
            conn.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as exc:
            self._lost(exc)
            return None
        self._conn, self._failed_at = conn, None
        return conn

    def _lost(self, exc: Exception) -> None:
        event(log, "doorbell.listen_failed", level=logging.WARNING, error=type(exc).__name__)
        self._failed_at = time.monotonic()
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None
