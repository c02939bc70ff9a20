"""PostgreSQL connections that never wait forever (``database.*`` settings).

Three guards, for three ways a call can hang:

- the server's ``statement_timeout`` ends a statement that runs too long (a lock that is never
  released, a runaway query) with an error;
- TCP keepalives and ``tcp_user_timeout`` let the kernel drop a connection whose peer vanished
  without a reset (a crashed host, a network partition);
- and, since neither helps when something in between accepts the bytes and never answers (a hung
  proxy or pooler), the client waits at most ``statement_timeout_seconds + ANSWER_GRACE_SECONDS``
  for any one answer, then closes the connection and raises ``OperationalError``.

Migrations are exempt (:func:`unbounded`): a long ``CREATE INDEX`` is no hang.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg.abc import PQGen
from psycopg.errors import _WaitTimeout  # what Connection.wait raises when its timeout expires
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.pool import ConnectionPoolEntry

from steadyvoice.settings import DatabaseSettings

# How much longer than the server's statement_timeout the client waits for an answer: the
# server's own error, when it can send one, is the clearer message.
ANSWER_GRACE_SECONDS = 5.0
_WAIT_INTERVAL = 0.1  # psycopg's own: how often a wait checks for Ctrl-C
RV = TypeVar("RV")


class BoundedConnection(psycopg.Connection[Any]):
    """A psycopg connection that waits at most ``answer_seconds`` for any one answer."""

    answer_seconds: float | None = None  # None: as long as it takes

    def wait(
        self, gen: PQGen[RV], interval: float = _WAIT_INTERVAL, timeout: float | None = None
    ) -> RV:
        bound = timeout if timeout is not None else self.answer_seconds
        try:
            return super().wait(gen, interval=interval, timeout=bound)
        except _WaitTimeout:
            # The conversation stopped halfway: the connection is unusable. Closing it marks
            # it broken, so the pool discards it instead of handing it out again.
            self.pgconn.finish()
            raise psycopg.OperationalError(
                f"the database did not answer within {bound:g} s; the connection was closed"
            ) from None


def answer_seconds(guards: DatabaseSettings) -> float:
    """The longest a client waits for one answer from the server."""
    return guards.statement_timeout_seconds + ANSWER_GRACE_SECONDS


def connect_args(url: str, guards: DatabaseSettings) -> dict[str, Any]:
    """libpq parameters: keepalives, the TCP user timeout and the statement timeout."""
    dead_after = guards.keepalive_idle_seconds
    dead_after += guards.keepalive_interval_seconds * guards.keepalive_count
    limit_ms = round(guards.statement_timeout_seconds * 1000)
    # A client stuck inside a transaction (a hung fsync during publish, a paused VM) must not
    # hold its row locks for ever: the server ends an idle transaction after the same time.
    statement = f"-c statement_timeout={limit_ms} -c idle_in_transaction_session_timeout={limit_ms}"
    given = make_url(url).query.get("options")  # the operator's own options are kept
    if isinstance(given, str) and given:
        statement = f"{given} {statement}"
    return {
        "keepalives": 1,
        "keepalives_idle": guards.keepalive_idle_seconds,
        "keepalives_interval": guards.keepalive_interval_seconds,
        "keepalives_count": guards.keepalive_count,
        "tcp_user_timeout": dead_after * 1000,
        "options": statement,
    }


def install(engine: Engine, guards: DatabaseSettings) -> None:
    """Make ``engine`` open :class:`BoundedConnection` s."""
    bound = answer_seconds(guards)

    def connect(
        _dialect: Dialect, _record: ConnectionPoolEntry, cargs: Any, cparams: Any
    ) -> BoundedConnection:
        conn = BoundedConnection.connect(*cargs, **cparams)
        conn.answer_seconds = bound
        return conn

    event.listen(engine, "do_connect", connect)


@contextmanager
def unbounded(conn: Connection) -> Iterator[None]:
    """Lift both time limits on ``conn`` (a migration), and discard the connection after."""
    dbapi = conn.connection.dbapi_connection
    if not isinstance(dbapi, BoundedConnection):
        yield
        return
    dbapi.answer_seconds = None
    try:
        conn.execute(text("SET statement_timeout = 0"))
        conn.execute(text("SET idle_in_transaction_session_timeout = 0"))
        conn.commit()
        yield
    finally:
        conn.invalidate()  # never handed out again with the limits lifted
