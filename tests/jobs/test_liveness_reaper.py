"""Worker liveness rows, the reaper pass, and the doorbell that wakes workers."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from factories import new_job  # type: ignore[import-not-found]
from sqlalchemy import update

from steadyvoice.jobs.dispatch import Doorbell, DoorbellDispatcher, NullDispatcher
from steadyvoice.jobs.liveness import (
    BUSY,
    LOADING,
    READY,
    WorkerRegistry,
    local_worker_id,
)
from steadyvoice.jobs.models import Job, Worker, utcnow
from steadyvoice.jobs.reaper import Reaper
from steadyvoice.jobs.states import JobStatus
from steadyvoice.jobs.store import JobStore
from steadyvoice.settings import JobSettings


class RecordingDispatcher:
    """A dispatcher that remembers every ring."""

    def __init__(self) -> None:
        self.rung: list[str] = []
        self.rung_twice = threading.Event()

    def notify(self, job_id: str) -> None:
        self.rung.append(job_id)
        if len(self.rung) >= 2:
            self.rung_twice.set()


def queue_job(store: JobStore) -> str:
    job, _ = store.create(new_job("Hello."))
    return job.id


def age_worker(store: JobStore, worker_id: str, seconds: float) -> None:
    with store.session() as s:
        s.execute(
            update(Worker)
            .where(Worker.id == worker_id)
            .values(heartbeat_at=utcnow() - timedelta(seconds=seconds))
        )


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """A short directory: AF_UNIX socket paths must stay under ~100 characters."""
    path = Path(tempfile.mkdtemp(prefix="sv-", dir="/tmp"))
    yield path / "run"
    shutil.rmtree(path, ignore_errors=True)


# --- worker registry ----------------------------------------------------------------------


def test_local_worker_id_is_host_pid_and_instance() -> None:
    assert local_worker_id().startswith(f"{socket.gethostname()}:{os.getpid()}:")
    assert local_worker_id(123, "0badcafe") == f"{socket.gethostname()}:123:0badcafe"


def test_register_beat_live_remove(store: JobStore) -> None:
    registry = WorkerRegistry(store)
    registry.register("box:123", "fake")
    (row,) = registry.live(15)
    assert (row.id, row.host, row.pid, row.engine) == ("box:123", "box", 123, "fake")
    assert row.state == LOADING and row.jobs_done == 0 and row.current_job is None
    first_beat = row.heartbeat_at

    registry.beat("box:123", BUSY, "job-1", 3)
    (row,) = registry.live(15)
    assert (row.state, row.current_job, row.jobs_done) == (BUSY, "job-1", 3)
    assert row.heartbeat_at >= first_beat

    registry.register("box:123", "fake")  # a restart on the same id starts over
    (row,) = registry.live(15)
    assert row.state == LOADING and row.jobs_done == 0

    registry.remove("box:123")
    assert registry.live(15) == []


def test_a_worker_id_without_a_pid_is_registered_with_pid_zero(store: JobStore) -> None:
    registry = WorkerRegistry(store)
    registry.register("celery-worker", "fake")
    (row,) = registry.live(15)
    assert row.pid == 0


def test_live_excludes_silent_workers_and_prune_forgets_them(store: JobStore) -> None:
    registry = WorkerRegistry(store)
    registry.register("a:1", "fake")
    registry.register("b:2", "fake")
    registry.beat("a:1", READY, None, 0)
    age_worker(store, "b:2", 60)
    assert [w.id for w in registry.live(15)] == ["a:1"]
    assert sorted(w.id for w in registry.live(120)) == ["a:1", "b:2"]
    assert registry.prune(300) == 0
    assert registry.prune(30) == 1
    assert sorted(w.id for w in registry.live(3600)) == ["a:1"]


# --- reaper -------------------------------------------------------------------------------


def test_reaper_requeues_an_expired_job_and_rings_the_queue(store: JobStore) -> None:
    job_id = queue_job(store)
    claim = store.claim("dead:1", 30)
    assert claim is not None
    with store.session() as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    dispatcher = RecordingDispatcher()
    report = Reaper(store, dispatcher, JobSettings()).run_once()
    assert report.requeued == [job_id]
    assert store.get(job_id).status == JobStatus.QUEUED.value
    assert dispatcher.rung == ["*"]


def test_reaper_rings_while_jobs_wait_and_stays_quiet_otherwise(store: JobStore) -> None:
    dispatcher = RecordingDispatcher()
    reaper = Reaper(store, dispatcher, JobSettings())
    assert reaper.run_once().requeued == []
    assert dispatcher.rung == []
    job_id = queue_job(store)
    reaper.run_once()
    assert dispatcher.rung == ["*"]
    store.cancel(job_id)
    reaper.run_once()
    assert dispatcher.rung == ["*"]


def test_reaper_prunes_long_silent_workers(store: JobStore) -> None:
    registry = WorkerRegistry(store)
    registry.register("old:1", "fake")
    registry.register("new:2", "fake")
    settings = JobSettings(worker_ready_seconds=1.0)
    age_worker(store, "old:1", 60)  # more than 20 x worker_ready_seconds
    Reaper(store, NullDispatcher(), settings).run_once()
    assert [w.id for w in registry.live(3600)] == ["new:2"]


def test_reaper_thread_runs_passes_until_stopped(store: JobStore) -> None:
    queue_job(store)
    dispatcher = RecordingDispatcher()
    reaper = Reaper(store, dispatcher, JobSettings(reaper_interval_seconds=0.01))
    reaper.start()
    try:
        assert dispatcher.rung_twice.wait(timeout=10)
    finally:
        reaper.stop()
    after_stop = len(dispatcher.rung)
    reaper.run_once()
    assert len(dispatcher.rung) == after_stop + 1


# --- doorbell -----------------------------------------------------------------------------


def test_a_rung_doorbell_wakes_its_worker(run_dir: Path) -> None:
    bell = Doorbell(run_dir)
    try:
        assert (run_dir / f"doorbell-{os.getpid()}.sock").exists()
        DoorbellDispatcher(run_dir).notify("job-1")
        assert bell.wait(5)
    finally:
        bell.close()
    assert not (run_dir / f"doorbell-{os.getpid()}.sock").exists()


def test_an_unrung_doorbell_times_out(run_dir: Path) -> None:
    bell = Doorbell(run_dir)
    try:
        assert not bell.wait(0.05)
    finally:
        bell.close()


def test_many_rings_are_drained_by_one_wake_up(run_dir: Path) -> None:
    bell = Doorbell(run_dir)
    try:
        dispatcher = DoorbellDispatcher(run_dir)
        for n in range(5):
            dispatcher.notify(f"job-{n}")
        assert bell.wait(5)
        assert not bell.wait(0.05)
        dispatcher.notify("again")
        assert bell.wait(5)
    finally:
        bell.close()


def test_notify_cleans_up_a_stale_socket_and_still_rings_live_ones(run_dir: Path) -> None:
    bell = Doorbell(run_dir)
    stale = run_dir / "doorbell-999999999.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(stale))
    dead.close()  # its owner is gone; the file stays behind
    try:
        assert stale.exists()
        DoorbellDispatcher(run_dir).notify("job-1")
        assert not stale.exists()
        assert bell.wait(5)
    finally:
        bell.close()


def test_notify_without_a_run_dir_does_nothing(run_dir: Path) -> None:
    DoorbellDispatcher(run_dir / "missing").notify("job-1")
    NullDispatcher().notify("job-1")
    assert not (run_dir / "missing").exists()


def test_a_path_too_long_for_a_socket_falls_back_to_polling(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    bell = Doorbell(deep)
    try:
        assert not deep.exists()
        assert not bell.wait(0.01)
        DoorbellDispatcher(deep).notify("job-1")
    finally:
        bell.close()
