"""The worker loop in-process: graceful stop keeps the lease alive until the job is done."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pytest
from factories import new_job  # type: ignore[import-not-found]

from steadyvoice.engines.registry import build_engine
from steadyvoice.jobs.liveness import WorkerRegistry
from steadyvoice.jobs.store import JobStore
from steadyvoice.jobs.worker import Worker
from steadyvoice.settings import Settings


def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_stopping_worker_finishes_its_job_and_keeps_the_lease(
    settings_factory: Callable[..., Settings], store_factory: Callable[[str], JobStore]
) -> None:
    settings = settings_factory(
        fake={"seconds_per_char": 0.02},
        jobs={"lease_seconds": 0.4, "heartbeat_seconds": 0.1, "poll_interval_seconds": 0.05},
    )
    store = store_factory(settings.resolved_database_url)
    job, _ = store.create(new_job("x" * 60))  # 1.2 s of work, three leases long
    worker = Worker(settings, store, build_engine(settings), "host:1")
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        _until(lambda: store.get(job.id).status == "running", 10, "job running")
        worker.request_stop()
        while thread.is_alive():  # a reaper running all along must find nothing to take back
            report = store.reap(max_attempts=3)
            assert report.requeued == [] and report.lost == [], "lease expired while stopping"
            thread.join(timeout=0.05)
    finally:
        worker.request_stop()
        thread.join(timeout=10)
    done = store.get(job.id)
    assert done.status == "succeeded" and done.attempts == 1
    assert WorkerRegistry(store).live(60) == [], "a stopped worker removes its liveness row"


def test_stopping_worker_is_not_counted_ready(
    settings_factory: Callable[..., Settings], store_factory: Callable[[str], JobStore]
) -> None:
    settings = settings_factory(jobs={"heartbeat_seconds": 0.05, "poll_interval_seconds": 0.05})
    store = store_factory(settings.resolved_database_url)
    worker = Worker(settings, store, build_engine(settings), "host:2")
    registry = WorkerRegistry(store)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        _until(lambda: [w.state for w in registry.live(60)] == ["ready"], 10, "worker ready")
    finally:
        worker.request_stop()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_a_lost_lease_stops_the_job_at_the_next_sentence(
    settings_factory: Callable[..., Settings],
    store_factory: Callable[[str], JobStore],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The heartbeat finds the claim gone (here: the job was taken back, as from a worker
    thought dead) and the engine stops at its next sentence, free for the next job."""
    settings = settings_factory(
        fake={"seconds_per_char": 0.01},
        jobs={"lease_seconds": 30, "heartbeat_seconds": 0.1, "poll_interval_seconds": 0.05},
    )
    store = store_factory(settings.resolved_database_url)
    text = " ".join(f"This is sentence number {n}." for n in range(60))  # about 16 s of work
    job, _ = store.create(new_job(text))
    worker = Worker(settings, store, build_engine(settings), "host:3")
    thread = threading.Thread(target=worker.run)
    caplog.set_level(logging.INFO, logger="steadyvoice")
    thread.start()
    try:
        _until(lambda: store.get(job.id).status == "running", 10, "job running")
        assert store.release_worker("host:3", max_attempts=3).requeued == [job.id]
        taken_back = time.monotonic()
        _until(lambda: store.get(job.id).attempts == 2, 10, "the worker to take the job again")
        assert time.monotonic() - taken_back < 8, "the first attempt ran on"
        store.cancel(job.id)
        _until(lambda: len(_events(caplog, "job.abandoned")) == 2, 10, "the second to stop")
    finally:
        worker.request_stop()
        thread.join(timeout=10)
    first, second = _events(caplog, "job.abandoned")
    assert first.__dict__["reason"] == "lease_lost"
    assert first.__dict__["status"] in ("queued", "running"), "requeued, maybe taken again"
    assert second.__dict__["reason"] == "canceled"
    assert not _events(caplog, "job.lease_lost")
    assert store.get(job.id).status == "canceled"


def _events(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == name]
