"""Rate-limit hits arriving together share one transaction and still count exactly."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from steadyvoice.errors import TooManyRequests
from steadyvoice.jobs.store import JobStore
from steadyvoice.security.ratelimit import WINDOW, RateLimiter

MINUTE = 29_000_000
DEADLINE = 60.0


def test_a_burst_of_hits_counts_exactly_and_takes_fewer_transactions(
    db_url: str, store_factory: Callable[[str], JobStore]
) -> None:
    limiter = RateLimiter(store_factory(db_url), lambda: MINUTE * WINDOW + 10.0)
    commits = [0]

    def counted(*_: Any) -> None:
        commits[0] += 1

    event.listen(limiter._engine, "commit", counted)
    # The first hit's transaction waits until the other 35 are queued behind it, so that the
    # grouping does not depend on the threads' timing: then they all go in the next one.
    run_many = limiter._hits._run_many
    first = [True]

    def held_first(items: list[tuple[str, int]]) -> list[BaseException | None]:
        if first[0]:
            first[0] = False
            until = time.monotonic() + DEADLINE
            while len(limiter._hits._waiting) < 35 and time.monotonic() < until:
                time.sleep(0.002)
        return run_many(items)

    limiter._hits._run_many = held_first
    outcomes: Counter[str] = Counter()
    waits: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(36)

    def client(key_id: str) -> None:
        start.wait(DEADLINE)
        try:
            limiter.hit(key_id, 10)
            what = f"{key_id} ok"
        except TooManyRequests as exc:
            what = f"{key_id} refused"
            with lock:
                waits.append(int(exc.details["retry_after"]))
        with lock:
            outcomes[what] += 1

    threads = [threading.Thread(target=client, args=("key_a",)) for _ in range(30)]
    threads += [threading.Thread(target=client, args=("key_b",)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
    assert not any(t.is_alive() for t in threads)
    # Exactly the limit passed for the flooded key, and the other key was not touched by it.
    assert outcomes == {"key_a ok": 10, "key_a refused": 20, "key_b ok": 6}
    assert waits and all(w > 0 for w in waits)
    # 36 hits: two transactions (the first alone, then the 35 that queued behind it).
    assert commits[0] == 2, commits[0]
    limiter.close()


def test_a_failed_group_fails_alike_on_sqlite_and_hit_by_hit_on_postgresql(
    db_url: str, store_factory: Callable[[str], JobStore]
) -> None:
    """On PostgreSQL a group's failure can be one key's (its row lock waited out the statement
    timeout), so its hits are tried again one by one and only that key's caller sees the
    error; on SQLite the one database lock fails them all alike."""
    limiter = RateLimiter(store_factory(db_url), lambda: MINUTE * WINDOW + 10.0)
    together = limiter._hits_together

    def key_b_times_out(hits: list[tuple[str, int]]) -> list[BaseException | None]:
        if any(key_id == "key_b" for key_id, _ in hits):
            raise OperationalError("UPDATE rate_windows ...", {}, Exception("lock timeout"))
        return together(hits)

    limiter._hits_together = key_b_times_out  # type: ignore[method-assign]
    hits = [("key_a", 10), ("key_b", 10), ("key_c", 10)]
    if not db_url.startswith("postgresql"):
        with pytest.raises(OperationalError):
            limiter._hit_many(hits)
        limiter.close()
        return
    results = limiter._hit_many(hits)
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], OperationalError)
    limiter._hits_together = together  # type: ignore[method-assign]
    assert limiter.wait("key_a", 1) is not None  # key_a and key_c were counted
    assert limiter.wait("key_c", 1) is not None
    assert limiter.wait("key_b", 1) is None  # key_b was not
    limiter.close()
