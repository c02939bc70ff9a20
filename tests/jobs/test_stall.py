"""steadyvoice.jobs.stall: a standalone worker's step limits (the watchdog and lease depend on it).
The real process, pings and lease: tests/deploy/test_sd_notify.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

from steadyvoice.jobs.stall import WORK_PER_AUDIO_SECOND, Progress, idle_limit, step_limit
from steadyvoice.jobs.store import Claim


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_no_limit_until_serving_then_each_mark_restarts_the_step() -> None:
    clock = Clock()
    progress = Progress(idle_limit=2.0, clock=clock)
    clock.now += 1_000  # loading: systemd's TimeoutStartSec covers it
    assert progress.healthy()
    progress.serving()
    clock.now += 1.5
    progress.mark()
    clock.now += 1.5
    assert progress.healthy(), "a mark starts the step again"
    clock.now += 1.0
    assert progress.stalled()
    progress.step(10.0)  # a job began: its own limit
    clock.now += 9.0
    assert progress.healthy() and progress.limit == 10.0


def _claim(estimated: float | None, deadline_after: float, started: bool = True) -> Claim:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    job: Any = SimpleNamespace(
        estimated_seconds=estimated,
        started_at=start if started else None,
        deadline_at=start + timedelta(seconds=deadline_after),
    )
    return cast(Claim, SimpleNamespace(job=job))


def test_step_limit_follows_the_estimate_within_the_floor_and_the_deadline() -> None:
    assert idle_limit(30.0, 1.0) == 60.0 and idle_limit(1.0, 0.5) == 2.0
    assert step_limit(_claim(0.01, 600), 60, 900) == 60, "never below the floor"
    assert step_limit(_claim(20.0, 600), 60, 900) == 20 * WORK_PER_AUDIO_SECOND
    assert step_limit(_claim(None, 600), 60, 900) == 600, "no estimate: the cap, then deadline"
    assert step_limit(_claim(None, 6 * 3600), 60, 900) == 900 * WORK_PER_AUDIO_SECOND
    assert step_limit(_claim(None, 10), 60, 900) == 60, "a near deadline never goes under"
    assert step_limit(_claim(None, 10, started=False), 60, 900) == 900 * WORK_PER_AUDIO_SECOND
