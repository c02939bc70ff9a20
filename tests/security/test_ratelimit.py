"""Per-key rate limits: the sliding-window arithmetic, and the shared counter on both databases."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from steadyvoice.errors import TooManyRequests
from steadyvoice.jobs.store import JobStore
from steadyvoice.security.models import RateWindow
from steadyvoice.security.ratelimit import WINDOW, RateLimiter, estimate, retry_after, room

MINUTE = 29_000_000  # a clock minute index; MINUTE * 60 is a whole minute in epoch seconds


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, minute: int = MINUTE, second: float = 0.0) -> None:
        self.now = minute * WINDOW + second

    def __call__(self) -> float:
        return self.now

    def at(self, minute: int, second: float) -> None:
        self.now = minute * WINDOW + second

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- the arithmetic -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "current", "elapsed", "expected"),
    [
        (0, 5, 30.0, 5.0),
        (10, 0, 0.0, 10.0),
        (10, 0, 30.0, 5.0),
        (10, 0, 60.0, 0.0),
        (6, 3, 20.0, 7.0),
        (60, 1, 59.0, 2.0),
    ],
)
def test_estimate(previous: int, current: int, elapsed: float, expected: float) -> None:
    assert estimate(previous, current, elapsed) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("previous", "current", "elapsed", "limit", "expected"),
    [
        # This minute alone is over: wait into the next minute until its share fades.
        (0, 11, 10.0, 10, 61),  # 50 s to the boundary, then 60 * 2/11 = 10.9 s
        (0, 2, 59.5, 1, 61),  # limit 1: only once this minute has slid out entirely
        (0, 20, 0.0, 10, 93),  # 60 s, then 60 * (1 - 9/20) = 33 s into the next minute
        (4, 36, 55.0, 25, 25),  # 5 s, then 60 * (1 - 24/36) = 20 s: exactly 25, not 26
        (143, 75, 51.0, 26, 49),  # 9 s, then 60 * (1 - 25/75) = 40 s: exactly 49
        # Last minute's share is what is over: wait until enough of it has slid out.
        (10, 5, 30.0, 10, 6),  # at 36 s: 10 * 24/60 + 5 = 9 = limit - 1
        (20, 1, 0.0, 10, 36),  # at 36 s: 20 * 24/60 + 1 = 9
        (10, 5, 35.5, 10, 1),  # never less than one second
        (5, 0, 0.0, 10, 1),
    ],
)
def test_retry_after(
    previous: int, current: int, elapsed: float, limit: int, expected: int
) -> None:
    assert retry_after(previous, current, elapsed, limit) == expected


def _fits_after(previous: int, current: int, elapsed: float, limit: int, wait: int) -> bool:
    """Would one more request, ``wait`` s later with none in between, be within ``limit``?

    Exact arithmetic, so the answer does not depend on rounding in the code under test.
    """
    at = Fraction(elapsed) + wait
    if at < 60:
        prev, cur, into = previous, current + 1, at
    elif at < 120:
        prev, cur, into = current, 1, at - 60
    else:
        prev, cur, into = 0, 1, at - 120
    return prev * (60 - into) / 60 + cur <= limit


@settings(max_examples=500, deadline=None)
@given(
    limit=st.integers(1, 1000),
    previous=st.integers(0, 3000),
    current=st.integers(0, 3000),
    # Whole seconds too: that is where an exact wait is a whole number and rounding shows.
    elapsed_ms=st.integers(0, 59_999) | st.integers(0, 59).map(lambda s: s * 1000),
)
@example(limit=25, previous=4, current=36, elapsed_ms=55_000)  # exactly 25 s
@example(limit=26, previous=143, current=75, elapsed_ms=51_000)  # exactly 49 s
def test_waiting_retry_after_is_just_enough(
    limit: int, previous: int, current: int, elapsed_ms: int
) -> None:
    elapsed = elapsed_ms / 1000
    assume(estimate(previous, current + 1, elapsed) > limit)  # refused: one more is over
    wait = retry_after(previous, current, elapsed, limit)
    assert wait >= 1
    assert _fits_after(previous, current, elapsed, limit, wait), wait
    assert not _fits_after(previous, current, elapsed, limit, wait - 1), wait


# --- the shared counter -------------------------------------------------------------------


@pytest.fixture
def limiters(
    db_url: str, store_factory: Callable[[str], JobStore]
) -> tuple[Clock, RateLimiter, RateLimiter]:
    """Two limiters on their own connection pools (as two API processes) and one clock."""
    clock = Clock()
    return (
        clock,
        RateLimiter(store_factory(db_url), clock),
        RateLimiter(store_factory(db_url), clock),
    )


def _refused(limiter: RateLimiter, key_id: str, limit: int) -> TooManyRequests:
    with pytest.raises(TooManyRequests) as caught:
        limiter.hit(key_id, limit)
    return caught.value


def test_n_requests_pass_the_next_waits_retry_after(
    limiters: tuple[Clock, RateLimiter, RateLimiter],
) -> None:
    clock, one, two = limiters
    clock.at(MINUTE, 10.0)
    for i in range(5):
        (one if i % 2 else two).hit("key_a", 5)  # both processes count into one window
    refused = _refused(one, "key_a", 5)
    assert (refused.code, refused.status) == ("rate_limited", 429)
    wait = refused.details["retry_after"]
    assert wait == retry_after(0, 5, 10.0, 5) == 62  # 50 s to the boundary, then 60 * 1/5
    assert refused.details["limit"] == 5
    two.hit("key_b", 5)  # another key has its own count

    clock.advance(wait - 1)
    still = _refused(two, "key_a", 5)  # one second short is not enough
    clock.advance(still.details["retry_after"])
    one.hit("key_a", 5)


def test_refused_requests_do_not_push_the_window_on(
    limiters: tuple[Clock, RateLimiter, RateLimiter],
) -> None:
    """A client that keeps asking is told the same time (less what it waited), and a request
    at that time passes: refusals are not counted."""
    clock, one, two = limiters
    clock.at(MINUTE, 5.0)
    for _ in range(4):
        one.hit("key_a", 4)
    first = _refused(two, "key_a", 4).details["retry_after"]
    assert first == retry_after(0, 4, 5.0, 4) == 70  # 55 s to the boundary, then 60 * 1/4
    waits = [first]
    for step in range(20):
        clock.advance(0.5 if step % 2 else 2.0)
        waits.append(_refused(one if step % 2 else two, "key_a", 4).details["retry_after"])
    assert waits == sorted(waits, reverse=True), f"Retry-After grew: {waits}"
    assert waits[-1] == first - 25, "it counts down with the clock, nothing else"
    clock.at(MINUTE, 5.0 + first - 1)
    _refused(one, "key_a", 4)  # a second early is still too early
    clock.at(MINUTE, 5.0 + first)  # when the first refusal said to come back
    two.hit("key_a", 4)


@settings(max_examples=300, deadline=None)
@given(
    limit=st.integers(1, 1000),
    previous=st.integers(0, 3000),
    elapsed_ms=st.integers(0, 59_999) | st.integers(0, 59).map(lambda s: s * 1000),
)
def test_room_is_the_most_the_estimate_allows(limit: int, previous: int, elapsed_ms: int) -> None:
    at = Fraction(elapsed_ms, 1000)
    most = room(previous, elapsed_ms / 1000, limit)

    def within(current: int) -> bool:
        return previous * (60 - at) / 60 + current <= limit

    assert not within(most + 1)
    assert most < 0 or within(most)


def test_waiting_exactly_retry_after_gets_through(
    limiters: tuple[Clock, RateLimiter, RateLimiter],
) -> None:
    clock, one, two = limiters
    clock.at(MINUTE, 42.5)
    for _ in range(3):
        one.hit("key_a", 3)
    wait = _refused(two, "key_a", 3).details["retry_after"]
    clock.advance(wait)
    one.hit("key_a", 3)


def test_the_window_slides_across_the_minute_boundary(
    limiters: tuple[Clock, RateLimiter, RateLimiter],
) -> None:
    clock, one, two = limiters
    clock.at(MINUTE, 50.0)
    for _ in range(10):
        one.hit("key_a", 10)
    clock.at(MINUTE + 1, 0.0)  # a fixed window would start afresh here; a sliding one does not
    refused = _refused(two, "key_a", 10)
    assert refused.details["retry_after"] == 6  # at 6 s: 10 * 54/60 + 1 = 10
    clock.at(MINUTE + 1, 6.0)
    two.hit("key_a", 10)  # the refusal above was not counted
    _refused(one, "key_a", 10)  # 9 + 2: full again
    clock.at(MINUTE + 1, 12.0)
    one.hit("key_a", 10)  # 8 + 2 = 10
    _refused(two, "key_a", 10)  # 8 + 3
    clock.at(MINUTE + 3, 0.0)  # both old minutes are out of the window
    for _ in range(10):
        one.hit("key_a", 10)


def _windows(store: JobStore) -> set[tuple[str, int]]:
    with store.reading() as s:
        return {(w.key_id, w.minute) for w in s.scalars(select(RateWindow))}


def test_sweep_deletes_only_windows_no_estimate_reads(
    db_url: str, store_factory: Callable[[str], JobStore]
) -> None:
    store = store_factory(db_url)
    clock = Clock()
    limiter = RateLimiter(store, clock)
    for minute in (MINUTE - 5, MINUTE - 2, MINUTE - 1, MINUTE):
        clock.at(minute, 30.0)
        for key_id in ("key_a", "key_b"):
            limiter.hit(key_id, 100)
    clock.at(MINUTE, 59.0)
    assert limiter.sweep() == 4
    assert _windows(store) == {(k, m) for k in ("key_a", "key_b") for m in (MINUTE - 1, MINUTE)}
    assert limiter.sweep() == 0
    clock.at(MINUTE + 1, 0.0)
    assert limiter.sweep() == 2
    assert _windows(store) == {("key_a", MINUTE), ("key_b", MINUTE)}
