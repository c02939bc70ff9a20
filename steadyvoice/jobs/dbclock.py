"""The database's clock: the one wall clock that every process and host sharing a store agrees on.

Leases, deadlines and worker heartbeats are written by one process (a worker, an API process)
and judged by another (the reaper, readiness, admission), often on another host. Each host's
wall clock may be off by seconds, or step (NTP, a resumed VM), so every such time is read from
the database server instead, once per transaction, and used for every comparison and assignment
in it. Time measured inside one process uses ``time.monotonic``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from steadyvoice.jobs import models

# SQLite's clock counts whole milliseconds (CURRENT_TIMESTAMP would drop even those).
_SQLITE_NOW = text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")
_SQLITE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
_SQLITE_TICK = timedelta(milliseconds=1)
# PostgreSQL's now() is the start of the transaction: one instant for all of it.
_POSTGRESQL_NOW = text("SELECT now()")


def db_now(s: Session) -> datetime:
    """The database server's current time (UTC, timezone-aware), read in ``s``'s transaction."""
    if s.get_bind().dialect.name == "sqlite":
        return _sqlite_now(s)
    value = s.scalar(_POSTGRESQL_NOW)
    assert isinstance(value, datetime)  # timestamptz: always aware
    return value.astimezone(UTC)


def _sqlite_now(s: Session) -> datetime:
    """SQLite's clock is this host's wall clock, read to the millisecond. When this process's
    reading of it, taken just before, falls in the same millisecond (the clocks agree), that
    reading is the same time to the microsecond: times stay ordered, and never earlier than a
    moment this process saw before the call. Otherwise SQLite's reading wins."""
    before = models.utcnow()
    tick = datetime.strptime(str(s.scalar(_SQLITE_NOW)), _SQLITE_FORMAT).replace(tzinfo=UTC)
    return before if tick <= before < tick + _SQLITE_TICK else tick
