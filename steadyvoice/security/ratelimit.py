"""Per-key request rate, shared by every API process through the database.

A sliding window over two clock minutes: the estimate is this minute's count plus last
minute's count weighted by how much of last minute still lies inside the past 60 s. Only
requests let through are counted: a refused one changes nothing, so asking again does not push
the window on, and the ``Retry-After`` a refusal gives is when the next request will pass
(counting only what passed, it can only shrink as time goes on).

The same windows count refused keys per client address (:class:`FailedAuthLimit`): an address
over its limit is answered 429 before its key is even looked up.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from typing import Any

from sqlalchemy import Engine, bindparam, delete, event, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from steadyvoice.errors import TooManyFailedLogins, TooManyRequests
from steadyvoice.jobs.database import READ_ONLY, make_engine
from steadyvoice.jobs.store import JobStore
from steadyvoice.security.group_commit import Combiner
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
    harmless, so their commits skip the per-commit disk flush: PostgreSQL
    ``synchronous_commit = off``, and on SQLite the limiter's own connections run
    ``synchronous=NORMAL`` (:func:`_limiter_engine`). Never ``OFF``: these connections write
    to the job database, and in WAL mode the connection whose commit crosses the auto-checkpoint
    threshold copies the WAL into the database. Under ``NORMAL`` that checkpoint still syncs the
    WAL before copying and the database after, so a power cut can lose the last counts but
    cannot corrupt jobs or the audit log; under ``OFF`` it could. The check stays a fraction
    of a millisecond instead of an fsync per request (docs/benchmarks.md).
    """

    def __init__(self, store: JobStore, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._postgres = store.engine.dialect.name == "postgresql"
        self._engine = store.engine if self._postgres else _limiter_engine(store.engine)
        self._own_engine = not self._postgres
        self._sessions = sessionmaker(self._engine)
        # Reads stay deferred on SQLite: a check before every key lookup takes no write lock.
        self._readers = sessionmaker(self._engine.execution_options(**{READ_ONLY: True}))
        self._hits: Combiner[tuple[str, int], None] = Combiner(self._hit_many)

    def close(self) -> None:
        """Release the limiter's own connections (SQLite)."""
        if self._own_engine:
            self._engine.dispose()

    def hit(self, key_id: str, limit: int) -> None:
        """Count one request, or raise ``rate_limited`` (429) without counting it when it would
        take the key over ``limit`` per minute.

        The check and the count are one statement on the key's row, so API processes racing
        for the last place cannot both take it. Hits arriving together from many threads (of
        different keys, and up to two of one key: steadyvoice.api.key_gate) share one
        transaction (:class:`~steadyvoice.security.group_commit.Combiner`) instead of queueing
        for the database one by one in front of the next tenant's call.
        """
        self._hits.submit((key_id, limit))

    def _hit_many(self, hits: list[tuple[str, int]]) -> list[BaseException | None]:
        try:
            return self._hits_together(hits)
        except DBAPIError:
            if len(hits) == 1 or not self._postgres:
                raise  # SQLite's one lock: what failed the group fails each hit alike
            # On PostgreSQL a failure can be one key's (a row lock waited out its statement
            # timeout): each hit again on its own, so that only that key's caller sees it.
            return [self._hit_alone(hit) for hit in hits]

    def _hit_alone(self, hit: tuple[str, int]) -> BaseException | None:
        try:
            return self._hits_together([hit])[0]
        except DBAPIError as exc:
            return exc

    def _hits_together(self, hits: list[tuple[str, int]]) -> list[BaseException | None]:
        now = self._clock()
        minute = int(now // WINDOW)
        elapsed = now - minute * WINDOW
        results: list[BaseException | None] = [None] * len(hits)
        # One key's hits keep their order; keys are taken in one order, so two API processes'
        # transactions lock PostgreSQL rows in the same order and cannot deadlock.
        order = sorted(range(len(hits)), key=lambda i: hits[i][0])
        previous: dict[str, int] = {}
        with self._session() as s:
            for i in order:
                key_id, limit = hits[i]
                if key_id not in previous:
                    previous[key_id] = _count(s, key_id, minute - 1)
                before = previous[key_id]
                if _increment(s, key_id, minute, room(before, elapsed, limit)) is None:
                    current = _count(s, key_id, minute)
                    wait = retry_after(before, current, elapsed, limit)
                    results[i] = TooManyRequests(
                        f"more than {limit} requests a minute with this key; retry in {wait} s",
                        limit=limit,
                        retry_after=wait,
                    )
        return results

    def wait(self, key_id: str, limit: int) -> int | None:
        """Seconds until one more event of ``key_id`` would be within ``limit`` a minute, or
        None when it would be now. Counts nothing; one read."""
        now = self._clock()
        minute = int(now // WINDOW)
        elapsed = now - minute * WINDOW
        params = {"key_id": key_id, "previous": minute - 1, "minute": minute}
        with self._readers() as s, s.begin():
            counts = {int(m): int(c) for m, c in s.execute(_WINDOWS, params)}
        previous, current = counts.get(minute - 1, 0), counts.get(minute, 0)
        if current < room(previous, elapsed, limit):
            return None
        return retry_after(previous, current, elapsed, limit)

    def count(self, key_id: str, limit: int) -> None:
        """Count one event of ``key_id``, unless ``limit`` a minute is reached already."""
        now = self._clock()
        minute = int(now // WINDOW)
        elapsed = now - minute * WINDOW
        with self._session() as s:
            previous = _count(s, key_id, minute - 1)
            _increment(s, key_id, minute, room(previous, elapsed, limit))

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


class FailedAuthLimit:
    """Refused keys (401) per client address a minute, in every API process together.

    :meth:`check` runs before the key is looked up: an address over the limit gets 429
    ``auth_rate_limited`` and costs one read. :meth:`failed` counts a refusal. Checking and
    counting are two steps, so a burst of parallel guesses can pass the limit by the number in
    flight (nginx's ``limit_conn`` bounds that). IPv6 addresses count per /64, the block one
    host usually holds. A call with no address (a Unix socket without a proxy) is not limited.
    """

    def __init__(self, limiter: RateLimiter, per_minute: int) -> None:
        self._limiter = limiter
        self._limit = per_minute

    def check(self, client: str | None) -> None:
        if not self._limit or client is None:
            return
        wait = self._limiter.wait(address_bucket(client), self._limit)
        if wait is not None:
            raise TooManyFailedLogins(
                f"more than {self._limit} refused keys a minute from this address; "
                f"retry in {wait} s",
                limit=self._limit,
                retry_after=wait,
            )

    def failed(self, client: str | None) -> None:
        if self._limit and client is not None:
            self._limiter.count(address_bucket(client), self._limit)


def address_unit(client: str) -> str:
    """What one client is, for limits and for folding refusals: an IPv4 address (IPv4-mapped
    IPv6 included), or an IPv6 address's /64, since one host is given a whole /64."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:  # not an IP address (the test client's "testclient"): taken as it is
        return client
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def address_bucket(client: str) -> str:
    """The ``rate_windows`` key of a client address: never a key id (``key_...``), and short
    enough for the column whatever the address."""
    return "addr_" + hashlib.sha256(address_unit(client).encode()).hexdigest()[:24]


def _limiter_engine(engine: Engine) -> Engine:
    """Another engine on the same SQLite file whose commits skip the per-commit flush where
    that is safe: ``synchronous=NORMAL`` in WAL mode. Outside WAL (a file system where WAL
    cannot run) NORMAL could corrupt the database in a power cut, so the store's ``FULL``
    stays."""
    own = make_engine(engine.url.render_as_string(hide_password=False))
    event.listen(own, "connect", _normal_sync_in_wal)  # after make_engine's pragmas
    return own


def _normal_sync_in_wal(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    (mode,) = cur.execute("PRAGMA journal_mode").fetchone()
    if str(mode).lower() == "wal":
        cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


# The statements every request runs are built once (building one costs more than running it).
_WINDOWS = select(RateWindow.minute, RateWindow.count).where(
    RateWindow.key_id == bindparam("key_id"),
    RateWindow.minute.in_((bindparam("previous"), bindparam("minute"))),
)
_COUNT = select(RateWindow.count).where(
    RateWindow.key_id == bindparam("key_id"), RateWindow.minute == bindparam("minute")
)


def _upsert(insert: Callable[..., Any]) -> Any:
    """Add one to a key's count for a minute unless it holds ``most`` already; returns it."""
    return (
        insert(RateWindow)
        .values(key_id=bindparam("key_id"), minute=bindparam("minute"), count=1)
        .on_conflict_do_update(
            index_elements=[RateWindow.key_id, RateWindow.minute],
            set_={"count": RateWindow.count + 1},
            where=RateWindow.count < bindparam("most"),
        )
        .returning(RateWindow.count)
    )


_INCREMENT = {"postgresql": _upsert(postgresql.insert), "sqlite": _upsert(sqlite.insert)}


def _count(s: Session, key_id: str, minute: int) -> int:
    return int(s.scalar(_COUNT, {"key_id": key_id, "minute": minute}) or 0)


def _increment(s: Session, key_id: str, minute: int, most: int) -> int | None:
    """Add one to the key's count for ``minute`` unless it holds ``most`` already, in one
    statement; returns the new count, or None (nothing written) when there was no room."""
    if most < 1:
        return None
    dialect = "postgresql" if s.get_bind().dialect.name == "postgresql" else "sqlite"
    params = {"key_id": key_id, "minute": minute, "most": most}
    counted = s.execute(_INCREMENT[dialect], params).scalar_one_or_none()
    return None if counted is None else int(counted)
