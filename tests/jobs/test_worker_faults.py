"""Store and disk failures inside a job (issue 21, items 1 and 3), in-process.

A full disk fails the job with ``storage_full`` and the worker takes the next one; a database
error in the job's own store calls (a streamed chunk, the voice profile) is retried, never
recorded as ``engine_error``; a result whose commit landed but whose answer was lost is recorded
once; and a database gone for the whole lease leaves the job to the reaper, with the audio kept.
The same with real processes and PostgreSQL behind a cut proxy: ``test_worker_faults_pg.py``.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from factories import new_job  # type: ignore[import-not-found]
from sqlalchemy.exc import OperationalError

from steadyvoice.engines.base import VoiceTarget
from steadyvoice.engines.fake import FakeEngine
from steadyvoice.engines.registry import build_engine
from steadyvoice.errors import StorageFull
from steadyvoice.jobs.backoff import FIRST_DELAY, MAX_DELAY, retry_store
from steadyvoice.jobs.chunks import ChunkStore
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.outputs import staged_name
from steadyvoice.jobs.runner import run_claimed
from steadyvoice.jobs.store import Claim, JobStore
from steadyvoice.jobs.watch import ClaimWatch
from steadyvoice.jobs.worker import Worker
from steadyvoice.settings import FakeSettings, Settings
from steadyvoice.storage import local
from steadyvoice.storage.local import LocalStorage

pytestmark = pytest.mark.timeout(60)

TEXT = "First sentence here. Second one follows. Third ends it."


def _locked() -> OperationalError:
    """What SQLite raises when another writer holds the database past the busy timeout."""
    return OperationalError("INSERT ...", {}, sqlite3.OperationalError("database is locked"))


def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _claimed(store: JobStore, lease: float = 30, **params: Any) -> Claim:
    job, _ = store.create(new_job(TEXT, params={"seed": 42, "format": "wav", **params}))
    claim = store.claim("host:1", lease)
    assert claim is not None and claim.job.id == job.id
    return claim


def _events(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == name]


class _FailsOnce:
    """Wraps a store call: the first call raises ``error`` (after the real call, with
    ``after``: a commit that landed, then lost its answer); later calls pass through."""

    def __init__(self, call: Callable[..., Any], after: bool = False) -> None:
        self.call = call
        self.after = after
        self.calls = 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        if self.calls > 1:
            return self.call(*args)
        if self.after:
            self.call(*args)
        raise _locked()


# --- a full disk ------------------------------------------------------------------------


class _Disk:
    """``os`` as storage/local.py sees it, with an fsync that finds the disk full on demand."""

    def __init__(self) -> None:
        self.full = threading.Event()

    def fsync(self, fd: int) -> None:
        if self.full.is_set():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        os.fsync(fd)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> _Disk:
    fake = _Disk()
    monkeypatch.setattr(local, "os", fake)
    return fake


@dataclass
class _Running:
    settings: Settings
    store: JobStore
    thread: threading.Thread

    def ended(self, job_id: str) -> Job:
        _until(lambda: self.store.is_terminal(job_id), 30, f"job {job_id} to end")
        return self.store.get(job_id)


@pytest.fixture
def running_worker(
    settings_factory: Callable[..., Settings], store_factory: Callable[[str], JobStore]
) -> Iterator[_Running]:
    """An in-process worker on SQLite, running until the end of the test."""
    settings = settings_factory(
        jobs={"lease_seconds": 10, "heartbeat_seconds": 0.2, "poll_interval_seconds": 0.05}
    )
    store = store_factory(settings.resolved_database_url)
    worker = Worker(settings, store, build_engine(settings), "host:7")
    thread = threading.Thread(target=worker.run)
    thread.start()
    yield _Running(settings, store, thread)
    worker.request_stop()
    thread.join(timeout=20)


def test_a_full_disk_fails_the_job_storage_full_and_the_worker_takes_the_next(
    disk: _Disk, running_worker: _Running
) -> None:
    store = running_worker.store
    disk.full.set()
    first, _ = store.create(new_job("Written to a full disk."))
    second, _ = store.create(new_job("Still no room."))
    for job in (first, second):
        done = running_worker.ended(job.id)
        assert (done.status, done.error_code, done.attempts) == ("failed", "storage_full", 1)
        assert "no space left" in (done.error_message or "")
    assert running_worker.thread.is_alive(), "the worker ended on a full disk"
    assert list(running_worker.settings.outputs_dir.rglob("*")) == [
        p for p in running_worker.settings.outputs_dir.rglob("*") if p.is_dir()
    ], "a failed write leaves no file behind"
    disk.full.clear()  # space freed: the same worker serves again
    third, _ = store.create(new_job("Room again."))
    assert running_worker.ended(third.id).status == "succeeded"
    assert running_worker.thread.is_alive()


def test_write_atomic_names_a_full_disk_storage_full(disk: _Disk, tmp_path: Path) -> None:
    disk.full.set()
    with pytest.raises(StorageFull) as caught:
        LocalStorage(tmp_path).write_atomic("2026/01/01/a.wav", b"x")
    assert caught.value.code == "storage_full"
    assert list(tmp_path.rglob("*.wav")) == []


def test_any_other_disk_error_fails_the_job_storage_error(store: JobStore, tmp_path: Path) -> None:
    class Broken(LocalStorage):
        def write_atomic(self, name: str, data: bytes) -> tuple[str, int]:
            raise OSError(errno.EIO, os.strerror(errno.EIO))

    claim = _claimed(store)
    status = run_claimed(claim, FakeEngine(FakeSettings()), store, Broken(tmp_path))
    done = store.get(claim.job.id)
    assert (status, done.status, done.error_code) == ("failed", "failed", "storage_error")


# --- store errors inside the job: never engine_error --------------------------------------


def test_a_locked_database_on_a_chunk_write_is_retried_not_an_engine_error(
    store: JobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add = _FailsOnce(ChunkStore.add)
    monkeypatch.setattr(ChunkStore, "add", lambda *a: add(*a))
    claim = _claimed(store, stream=True)
    storage = LocalStorage(tmp_path)
    assert run_claimed(claim, FakeEngine(FakeSettings()), store, storage) == "succeeded"
    done = store.get(claim.job.id)
    assert (done.status, done.error_code, done.attempts) == ("succeeded", None, 1)
    assert add.calls > 1, "the chunk that failed was written again"
    seqs = [c.seq for c in ChunkStore(store).after(claim.job.id, -1)]
    assert seqs == [0, 1, 2], "one chunk per piece, none lost, none twice"


def test_a_store_error_in_the_voice_profile_lookup_is_retried_not_an_engine_error(
    store: JobStore, tmp_path: Path
) -> None:
    def target(voice_id: str, tenant: str | None = None) -> VoiceTarget:
        return VoiceTarget(voice_id, {}, reference_sha256="abc")

    class Profiles:
        target_for = _FailsOnce(target)

        def ids_named(self, name: str, tenant: str | None = None) -> list[str]:
            return []

    profile = {"id": "vp_1", "reference_sha256": "abc"}
    claim = _claimed(store, base_voice="alpha", voice_profile=profile)
    engine, storage = FakeEngine(FakeSettings()), LocalStorage(tmp_path)
    status = run_claimed(claim, engine, store, storage, Profiles())
    done = store.get(claim.job.id)
    assert (status, done.error_code, done.attempts) == ("succeeded", None, 1)
    assert Profiles.target_for.calls == 2


# --- recording the result -----------------------------------------------------------------


def test_a_commit_whose_answer_was_lost_is_recorded_once(
    store: JobStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``complete`` committed, then the connection failed: the retry is refused (the job is
    no longer running) and the runner sees the record is its own, not a lost claim."""
    complete = _FailsOnce(store.complete, after=True)
    monkeypatch.setattr(store, "complete", complete)
    caplog.set_level(logging.INFO, logger="steadyvoice")
    claim = _claimed(store)
    storage = LocalStorage(tmp_path)
    assert run_claimed(claim, FakeEngine(FakeSettings()), store, storage) == "succeeded"
    assert complete.calls == 2
    done = store.get(claim.job.id)
    assert (done.status, done.attempts) == ("succeeded", 1)
    assert storage.path(done.output_name).is_file(), "our own output is never deleted"
    assert len(_events(caplog, "job.succeeded")) == 1
    assert not _events(caplog, "job.claim_lost")


def test_a_failure_whose_answer_was_lost_is_recorded_once(
    store: JobStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fail = _FailsOnce(store.fail, after=True)
    monkeypatch.setattr(store, "fail", fail)
    caplog.set_level(logging.INFO, logger="steadyvoice")
    job, _ = store.create(new_job(TEXT, voice="nobody"))
    claim = store.claim("host:1", 30)
    assert claim is not None
    status = run_claimed(claim, FakeEngine(FakeSettings()), store, LocalStorage(tmp_path))
    done = store.get(job.id)
    assert (status, done.status, done.error_code) == ("failed", "failed", "unknown_voice")
    assert fail.calls == 2
    assert len(_events(caplog, "job.failed")) == 1


def test_a_database_away_for_the_whole_lease_leaves_the_job_to_the_reaper(
    store: JobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*_: Any) -> bool:
        raise _locked()

    claim = _claimed(store, lease=1.0)
    monkeypatch.setattr(store, "complete", down)
    storage = LocalStorage(tmp_path)
    began = time.monotonic()
    assert run_claimed(claim, FakeEngine(FakeSettings()), store, storage) == "running"
    assert time.monotonic() - began < 5, "retried past the lease"
    staged = storage.path(staged_name(claim.job.output_name, claim.attempt))
    assert staged.is_file(), "the durable audio is kept, for the record to be retried"
    assert not storage.exists(claim.job.output_name), "nothing recorded names an output yet"
    monkeypatch.undo()
    # The lease (never renewed here) runs out: the reaper hands the job to the next worker.
    _until(lambda: store.reap(max_attempts=3).requeued == [claim.job.id], 10, "the reaper")
    assert store.get(claim.job.id).status == "queued"


# --- how long a write is retried ----------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_lease_left_counts_from_the_claim_and_from_each_renewal(store: JobStore) -> None:
    clock = _Clock()
    watch = ClaimWatch(store, _claimed(store, lease=30), clock=clock)
    assert watch.lease_seconds == pytest.approx(30)  # read from the claim's record
    clock.now += 20
    assert watch.lease_left() == pytest.approx(10)
    asked = watch.now()
    clock.now += 1  # the renewal took a second: counted from when it was asked
    watch.renewed(asked)
    assert watch.lease_left() == pytest.approx(29)
    watch.lost()
    assert watch.lease_left() == 0


def test_a_failing_call_is_retried_for_one_lease_at_most_even_while_renewed(
    store: JobStore,
) -> None:
    """The heartbeat keeps renewing (the database answers it) but this one call keeps
    failing: it gives up after one lease length instead of holding the job forever."""
    clock = _Clock()
    watch = ClaimWatch(store, _claimed(store), clock=clock, lease_seconds=10)
    calls: list[float] = []

    def locked() -> None:
        calls.append(clock.now)
        raise _locked()

    def sleep(seconds: float) -> None:
        clock.now += seconds
        watch.renewed(clock.now)

    with pytest.raises(OperationalError):
        retry_store(locked, "test", watch, sleep=sleep)
    assert calls[-1] - calls[0] <= 10
    assert calls[1] - calls[0] == pytest.approx(FIRST_DELAY)
    assert max(b - a for a, b in itertools.pairwise(calls)) == pytest.approx(MAX_DELAY)


def test_a_claim_known_lost_is_not_retried(store: JobStore) -> None:
    watch = ClaimWatch(store, _claimed(store))
    watch.lost()
    calls: list[int] = []

    def locked() -> None:
        calls.append(1)
        raise _locked()

    with pytest.raises(OperationalError):
        retry_store(locked, "test", watch, sleep=lambda _: None)
    assert calls == [1]
