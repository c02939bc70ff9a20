"""Per-key request rate, shared by every API process through the database.

A sliding window over two clock minutes: the estimate is this minute's count plus last
minute's count weighted by how much of last minute still lies inside the past 60 s. Only
requests let through are counted: a refused one changes nothing, so asking again does not push
the window on, and the ``Retry-After`` a refusal gives is when the next request will pass
(counting only what passed, it can only shrink as time goes on).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from typing import Any

from sqlalchemy import Engine, delete, event, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from steadyvoice.errors import TooManyRequests
from steadyvoice.jobs.database import make_engine
from steadyvoice.jobs.store import JobStore
from steadyvoice.security.models import RateWindow

WINDOW = 60.0


def estimate(previous: int, current: int, elapsed: float) -> float:
    """Requests in the last 60 s, estimated from two clock-minute counts."""
    return previous * (WINDOW - elapsed) / WINDOW + current


def _exact(elapsed: float) -> Fraction:
    """``elapsed`` to the millisecond, exactly: ``Fraction(0.3)`` is 0.2999..., which would
    move a boundary by one request."""
    return Fraction(round(elapsed * 1000), 1000)


def room(previous: int, elapsed: float, limit: int) -> int:
    """The most requests this clock minute may count, ``elapsed`` s into it, so that the
    estimate stays within ``limit`` (negative: none, last minute's share is over it already).

    Exact arithmetic, like :func:`retry_after`, so the two agree on the boundary.
    """
    window = Fraction(int(WINDOW))
    return math.floor(limit - previous * (window - _exact(elapsed)) / window)


def retry_after(previous: int, current: int, elapsed: float, limit: int) -> int:
    """Whole seconds until one more request would be within ``limit``, when ``current``
    requests were counted this minute.

    Exact arithmetic: with floats, a wait of exactly 20 s can come out as 20.000000000000004
    and be rounded up to 21.
    """
    room = limit - 1  # the estimate must fall to this before one more request fits
    window, spent = Fraction(int(WINDOW)), _exact(elapsed)
    if current <= room:
        if previous == 0:
            return 1
        wait = window - spent - window * (room - current) / previous
        return max(1, math.ceil(wait))
    # Not before the next minute: then this minute's count fades as the window slides on.
    later = window * (1 - Fraction(room, current)) if current else Fraction(0)
    return max(1, math.ceil(window - spent + later))


class RateLimiter:
    """Counts a key's requests per clock minute in ``rate_windows``.

    The counts are shared state, not records: losing the last second of them to a power cut is
    harmless, so their commits skip the disk flush (SQLite ``synchronous=OFF`` on the limiter's
    own connections, PostgreSQL ``synchronous_commit = off``). That keeps the check to a
    fraction of a millisecond instead of an fsync per request.
    """

    def __init__(self, store: JobStore, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._postgres = store.engine.dialect.name == "postgresql"
        self._engine = store.engine if self._postgres else _unflushed(store.engine)
        self._own_engine = not self._postgres
        self._sessions = sessionmaker(self._engine)

    def close(self) -> None:
        """Release the limiter's own connections (SQLite)."""
        if self._own_engine:
            self._engine.dispose()

    def hit(self, key_id: str, limit: int) -> None:
        """Count one request, or raise ``rate_limited`` (429) without counting it when it would
        take the key over ``limit`` per minute.

        The check and the count are one statement on the key's row, so API processes racing
        for the last place cannot both take it.
        """
        now = self._clock()
        minute = int(now // WINDOW)
        elapsed = now - minute * WINDOW
        with self._session() as s:
            previous = _count(s, key_id, minute - 1)
            counted = _increment(s, key_id, minute, room(previous, elapsed, limit))
            current = _count(s, key_id, minute) if counted is None else counted
        if counted is None:
            wait = retry_after(previous, current, elapsed, limit)
            raise TooManyRequests(
                f"more than {limit} requests a minute with this key; retry in {wait} s",
                limit=limit,
                retry_after=wait,
            )

    def sweep(self) -> int:
        """Delete windows no estimate reads any more; returns how many."""
        oldest_needed = int(self._clock() // WINDOW) - 1
        with self._session() as s:
            result = s.execute(delete(RateWindow).where(RateWindow.minute < oldest_needed))
        return int(getattr(result, "rowcount", 0) or 0)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._sessions() as s, s.begin():
            if self._postgres:
                s.execute(text("SET LOCAL synchronous_commit TO OFF"))
            yield s


def _unflushed(engine: Engine) -> Engine:
    """Another engine on the same SQLite file whose commits are not flushed to disk."""
    unflushed = make_engine(engine.url.render_as_string(hide_password=False))
    event.listen(unflushed, "connect", _no_sync)
    return unflushed


def _no_sync(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=OFF")
    cur.close()


def _count(s: Session, key_id: str, minute: int) -> int:
    q = select(RateWindow.count).where(RateWindow.key_id == key_id, RateWindow.minute == minute)
    return int(s.scalar(q) or 0)


def _increment(s: Session, key_id: str, minute: int, most: int) -> int | None:
    """Add one to the key's count for ``minute`` unless it holds ``most`` already, in one
    statement; returns the new count, or None (nothing written) when there was no room."""
    if most < 1:
        return None
    insert = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = (
        insert(RateWindow)
        .values(key_id=key_id, minute=minute, count=1)
        .on_conflict_do_update(
            index_elements=[RateWindow.key_id, RateWindow.minute],
            set_={"count": RateWindow.count + 1},
            where=RateWindow.count < most,
        )
        .returning(RateWindow.count)
    )
    counted = s.execute(stmt).scalar_one_or_none()
    return None if counted is None else int(counted)
