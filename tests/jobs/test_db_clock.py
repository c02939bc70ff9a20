"""Leases, deadlines and heartbeats on the database's clock: a host whose own clock is off, or
steps, neither requeues a live worker's job nor times one out (SQLite and PostgreSQL)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from factories import RESULT, new_job  # type: ignore[import-not-found]
from processes import poll  # type: ignore[import-not-found]

from steadyvoice.jobs import models
from steadyvoice.jobs.dispatch import NullDispatcher
from steadyvoice.jobs.liveness import BUSY, WorkerRegistry, local_worker_id
from steadyvoice.jobs.reaper import Reaper
from steadyvoice.jobs.states import JobStatus
from steadyvoice.jobs.store import TIMEOUT, JobStore
from steadyvoice.settings import JobSettings

LEASE = 30.0
Shift = Callable[[float], None]


@pytest.fixture
def set_python_clock(monkeypatch: pytest.MonkeyPatch) -> Shift:
    """Sets this process's wall clock (``utcnow``, wherever steadyvoice imported it) ``seconds``
    away from the real one, as a host whose clock is off or has stepped. The database's clock,
    SQLite's included (it reads the OS clock from C), does not move."""
    real = models.utcnow
    modules = [
        module
        for name, module in list(sys.modules.items())
        if name.startswith("steadyvoice") and getattr(module, "utcnow", None) is real
    ]

    def set_offset(seconds: float) -> None:
        def skewed() -> datetime:
            return real() + timedelta(seconds=seconds)

        for module in modules:
            monkeypatch.setattr(module, "utcnow", skewed)

    return set_offset


@pytest.fixture
def two_stores(db_url: str, store_factory: Callable[[str], JobStore]) -> tuple[JobStore, JobStore]:
    """(a worker's store, the reaper's store): two processes' connection pools, one database."""
    return store_factory(db_url), store_factory(db_url)


def test_a_reaper_clock_40s_ahead_leaves_a_heartbeating_worker_and_its_job_alone(
    two_stores: tuple[JobStore, JobStore], set_python_clock: Shift
) -> None:
    worker_store, reaper_store = two_stores
    job, _ = worker_store.create(new_job("Hello there."))
    worker_id = local_worker_id()
    registry = WorkerRegistry(worker_store)
    registry.register(worker_id, "fake")
    claim = worker_store.claim(worker_id, LEASE)
    assert claim is not None
    reaper = Reaper(reaper_store, NullDispatcher(), JobSettings(lease_seconds=LEASE))
    for _ in range(4):  # more passes than max_attempts: before the fix, the job failed
        set_python_clock(0)  # the worker's host
        assert worker_store.heartbeat(claim, LEASE)
        registry.beat(worker_id, BUSY, job.id, 0)
        set_python_clock(40)  # the reaper's host, 40 s ahead
        report = reaper.run_once()
        assert (report.requeued, report.lost, report.timed_out) == ([], [], [])
        # Readiness and admission, on the API's host, still count the worker as live.
        assert [w.id for w in WorkerRegistry(reaper_store).live(15)] == [worker_id]
    row = reaper_store.get(job.id)
    assert (row.status, row.attempts, row.worker_id) == (JobStatus.RUNNING.value, 1, worker_id)
    assert worker_store.complete(claim, RESULT)


def test_a_601s_step_of_the_hosts_clock_fails_no_job_in_flight(
    two_stores: tuple[JobStore, JobStore], set_python_clock: Shift
) -> None:
    worker_store, reaper_store = two_stores
    running, _ = worker_store.create(new_job("In flight.", deadline_seconds=600))
    waiting, _ = worker_store.create(new_job("Still waiting.", deadline_seconds=600))
    claim = worker_store.claim("host:1:0badcafe", LEASE)
    assert claim is not None and claim.job.id == running.id
    set_python_clock(601)  # NTP correction, a resumed VM: past every deadline by this clock
    reaper = Reaper(reaper_store, NullDispatcher(), JobSettings(lease_seconds=LEASE))
    assert reaper.run_once().timed_out == []
    assert worker_store.heartbeat(claim, LEASE)
    assert worker_store.complete(claim, RESULT)
    done = reaper_store.get(running.id)
    assert done.status == JobStatus.SUCCEEDED.value
    assert done.finished_at is not None and done.finished_at <= done.deadline_at
    # The queued job is still inside its deadline: a worker whose clock stepped still takes it.
    second = worker_store.claim("host:2:0badcafe", LEASE)
    assert second is not None and second.job.id == waiting.id
    assert reaper.run_once().timed_out == []


def test_a_job_past_its_deadline_by_the_database_clock_still_times_out(
    two_stores: tuple[JobStore, JobStore], set_python_clock: Shift
) -> None:
    worker_store, reaper_store = two_stores
    job, _ = worker_store.create(new_job("Too slow.", deadline_seconds=0.3))
    set_python_clock(-3600)  # a reaper whose clock is an hour behind
    reaper = Reaper(reaper_store, NullDispatcher(), JobSettings())
    timed_out = poll(lambda: reaper.run_once().timed_out, 10, "the deadline to pass")
    assert timed_out == [job.id]
    assert reaper_store.get(job.id).error_code == TIMEOUT


def test_a_lease_that_really_ran_out_is_requeued_by_a_reaper_behind(
    two_stores: tuple[JobStore, JobStore], set_python_clock: Shift
) -> None:
    worker_store, reaper_store = two_stores
    job, _ = worker_store.create(new_job("A worker that died."))
    assert worker_store.claim("host:1:0badcafe", 0.3) is not None
    set_python_clock(-3600)
    reaper = Reaper(reaper_store, NullDispatcher(), JobSettings())
    assert poll(lambda: reaper.run_once().requeued, 10, "the lease to run out") == [job.id]
