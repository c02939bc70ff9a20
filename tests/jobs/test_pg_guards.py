"""PostgreSQL calls never hang (issue 21, item 8): a connection that stops answering (the proxy
holds it open and forwards nothing), a statement stuck on a lock, a dead peer. Each ends in an
``OperationalError`` within the configured bound, and the store works again afterwards."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from factories import RESULT, new_job  # type: ignore[import-not-found]
from pg_proxy import through  # type: ignore[import-not-found]
from processes import TERMINAL, Process, poll  # type: ignore[import-not-found]
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from steadyvoice.jobs.database import _MIGRATION_LOCK_ID as MIGRATION_LOCK_ID
from steadyvoice.jobs.liveness import WorkerRegistry
from steadyvoice.jobs.pgguards import answer_seconds
from steadyvoice.jobs.store import JobStore
from steadyvoice.settings import DatabaseSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from tcp_proxy import TcpProxy  # type: ignore[import-not-found]

pytestmark = pytest.mark.timeout(180)

GUARDS = DatabaseSettings(statement_timeout_seconds=1)
CONNECT_SECONDS = 5  # make_engine's connect_timeout: a new connection through a stall
SLACK = 5.0  # a loaded test machine


@pytest.fixture
def guarded(pg_url: str, proxy: TcpProxy, tmp_path: Path) -> Iterator[JobStore]:
    """A store reaching the database through the proxy, with a 1 s statement timeout."""
    store = JobStore.from_url(through(proxy, pg_url), tmp_path, GUARDS)
    store.migrate()
    yield store
    store.engine.dispose()


def test_a_stalled_connection_fails_the_call_within_the_bound(
    guarded: JobStore, proxy: TcpProxy
) -> None:
    job, _ = guarded.create(new_job("Recorded through a proxy that stops answering."))
    claim = guarded.claim("host:1:0badcafe", 30)
    assert claim is not None
    assert proxy.stall() >= 1  # the pooled connection now gets no answer, ever
    started = time.monotonic()
    with pytest.raises(OperationalError):
        guarded.complete(claim, RESULT)  # before: hung here for good
    # One answer's wait on the stalled pooled connection, and at most one reconnect attempt.
    assert time.monotonic() - started < answer_seconds(GUARDS) + CONNECT_SECONDS + SLACK
    proxy.restore()  # new connections flow again; the stalled one is gone from the pool
    assert guarded.complete(claim, RESULT)
    assert guarded.get(job.id).status == "succeeded"


def test_a_statement_stuck_on_a_lock_is_ended_by_the_server(guarded: JobStore, pg_url: str) -> None:
    job, _ = guarded.create(new_job("Locked by another transaction."))
    claim = guarded.claim("host:1:0badcafe", 30)
    assert claim is not None
    with psycopg.connect(pg_url.replace("+psycopg", "")) as holder:
        holder.execute("SELECT id FROM jobs WHERE id = %s FOR UPDATE", (job.id,))
        started = time.monotonic()
        with pytest.raises(OperationalError, match="statement timeout"):
            guarded.heartbeat(claim, 30)
        assert time.monotonic() - started < GUARDS.statement_timeout_seconds + SLACK
    assert guarded.heartbeat(claim, 30)


def test_connections_carry_keepalives_and_the_statement_timeout(guarded: JobStore) -> None:
    with guarded.engine.connect() as conn:
        params = conn.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
        timeout = conn.execute(text("SHOW statement_timeout")).scalar()
        idle = conn.execute(text("SHOW idle_in_transaction_session_timeout")).scalar()
    assert params["keepalives"] == "1"
    assert (params["keepalives_idle"], params["keepalives_interval"]) == ("10", "5")
    assert params["keepalives_count"] == "3"
    assert params["tcp_user_timeout"] == str((10 + 5 * 3) * 1000)
    assert timeout == "1s"
    assert idle == "1s"  # a client stuck mid-transaction does not hold its row locks for ever


def test_migrations_are_exempt_from_the_limits(pg_url: str, tmp_path: Path) -> None:
    """A migration waits for another migrator's lock far past the statement timeout, and
    the connection it used is not handed out again with the limits lifted."""
    short = DatabaseSettings(statement_timeout_seconds=0.2)
    store = JobStore.from_url(pg_url, tmp_path, short)
    other = psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://"))
    other.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            store.migrate()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    migrating = threading.Thread(target=migrate, daemon=True)
    try:
        migrating.start()
        migrating.join(timeout=1.0)  # 5x the statement timeout: it is still waiting
        assert migrating.is_alive() and not errors
        other.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))
        migrating.join(timeout=60)
        assert not migrating.is_alive() and not errors, errors
        with store.engine.connect() as conn:  # the migration's connection was not kept
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "200ms"
    finally:
        other.close()
        store.engine.dispose()


def test_the_proxy_stall_holds_connections_open_without_answering(
    proxy: TcpProxy, pg_admin_url: str
) -> None:
    url = pg_admin_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    with psycopg.connect(url) as conn:
        assert proxy.stall() == 1
        errors: list[BaseException] = []

        def query() -> None:
            try:
                conn.execute("SELECT 1")
            except psycopg.OperationalError as exc:
                errors.append(exc)

        waiting = threading.Thread(target=query, daemon=True)
        waiting.start()
        waiting.join(1.0)
        assert waiting.is_alive(), "answered through a stalled proxy"
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=1)  # accepted, never answered
        proxy.restore()
        with psycopg.connect(url) as fresh:
            assert fresh.execute("SELECT 2").fetchone() == (2,)
        assert waiting.is_alive(), "a connection stalled for good stays silent"
        proxy.cut()
        waiting.join(10)
        assert not waiting.is_alive() and errors


def test_a_worker_whose_connections_stall_mid_job_records_it_on_new_ones(
    pg_url: str,
    proxy: TcpProxy,
    store_factory: Callable[[str], JobStore],
    service_env: Callable[..., dict[str, str]],
    start_worker: Callable[[dict[str, str]], Process],
) -> None:
    store = store_factory(pg_url)  # the test's own view: straight to the server
    env = service_env(
        database_url=through(proxy, pg_url),
        database__statement_timeout_seconds="1",
        engine="fake",
        fake__seconds_per_char="0.05",
        jobs__heartbeat_seconds="1",
    )
    worker = start_worker(env)
    assert worker.proc is not None
    poll(
        lambda: [w.state for w in WorkerRegistry(store).live(60)] == ["ready"],
        90,
        f"the worker ready; log:\n{worker.log()}",
    )
    job, _ = store.create(new_job("This job is running when its database connections stall."))
    poll(lambda: store.get(job.id).status == "running", 30, "the job running")
    proxy.stall()  # every connection the worker holds goes silent for good
    proxy.restore()  # new connections work: only the held ones are half-open
    # Before: the worker waited forever on a held connection (complete() or a heartbeat).
    done = poll(
        lambda: (j := store.get(job.id)).status in TERMINAL and j,
        90,
        f"the job to end; worker log:\n{worker.log()}",
    )
    assert (done.status, done.attempts) == ("succeeded", 1), worker.log()
    assert worker.proc.poll() is None, "the worker is still serving"
