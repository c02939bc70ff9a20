"""Only the attempt the store records ever writes a job's output (issue 21 item 4).

Forced interleavings of a stale attempt A (its claim taken back while it worked) and the retry B
that wins: A must neither remove nor replace B's file, whatever it read and whenever it acts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from factories import new_job  # type: ignore[import-not-found]

from steadyvoice.engines.base import Audio, SynthesisRequest
from steadyvoice.engines.fake import FakeEngine
from steadyvoice.errors import StorageError
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.outputs import after_lost_claim, stage, staged_name
from steadyvoice.jobs.runner import run_claimed
from steadyvoice.jobs.store import Claim, JobStore, Result
from steadyvoice.jobs.watch import ClaimWatch
from steadyvoice.settings import FakeSettings
from steadyvoice.storage import local
from steadyvoice.storage.local import TEMP_PREFIX, LocalStorage
from steadyvoice.storage.verify import verify_outputs

pytestmark = pytest.mark.timeout(60)

A, B = "host-a:1", "host-b:2"


class _Quieter(FakeEngine):
    """Other bytes for the same request: an attempt on another host, another engine build."""

    def synthesize(self, request: SynthesisRequest) -> Audio:
        audio = super().synthesize(request)
        return Audio(audio.samples * np.float32(0.5), audio.sample_rate, audio.sentences)


class _PausedAfterRefusal(JobStore):
    """Worker A's view of the store: the first read after its result was refused runs
    ``meanwhile`` (the other worker) before A gets the record it read."""

    def __init__(self, store: JobStore, meanwhile: Callable[[], None]) -> None:
        super().__init__(store.engine)
        self._meanwhile: Callable[[], None] | None = None
        self._then = meanwhile
        self.refused = 0

    def complete(self, *args: Any, **kwargs: Any) -> bool:
        done = super().complete(*args, **kwargs)
        if not done:
            self.refused += 1
            self._meanwhile = self._then
        return done

    def get(self, job_id: str, tenant: str | None = None) -> Job:
        job = super().get(job_id, tenant)
        meanwhile, self._meanwhile = self._meanwhile, None
        if meanwhile is not None:
            meanwhile()
        return job


def _engine(cls: type[FakeEngine] = FakeEngine) -> FakeEngine:
    return cls(FakeSettings())


def _stale_claim(store: JobStore) -> Claim:
    """A's claim, then A taken for dead (supervisor, power-cut release): the job is queued."""
    store.create(new_job("The job both attempts make."))
    claim = store.claim(A, 30)
    assert claim is not None
    assert store.release_worker(A, max_attempts=3).requeued == [claim.job.id]
    return claim


def _blind_watch(store: JobStore, claim: Claim) -> ClaimWatch:
    """A does not notice its claim is gone before it tries to record (cut off, or frozen)."""
    return ClaimWatch(store, claim, poll_seconds=3600)


def _win(store: JobStore, storage: LocalStorage, engine: FakeEngine) -> Job:
    claim = store.claim(B, 30)
    assert claim is not None and claim.attempt == 2
    assert run_claimed(claim, engine, store, storage) == "succeeded"
    return store.get(claim.job.id)


def _assert_only_the_winners_file(store: JobStore, storage: LocalStorage, winner: Job) -> None:
    path = storage.path(winner.output_name)
    assert path.is_file(), "the succeeded job's output was removed"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == winner.sha256
    report = verify_outputs(store, storage)
    assert (report.checked, report.ok, report.missing, report.corrupt) == (1, 1, [], [])
    assert report.unrecorded == [] and report.temporary == [], "nothing else left on disk"


def test_stale_worker_that_read_queued_does_not_delete_the_winners_output(
    store: JobStore, tmp_path: Path
) -> None:
    """A's result is refused, A reads the job as ``queued``; before A acts on it, B claims,
    writes the same output name and records success. A must not remove B's file."""
    storage = LocalStorage(tmp_path / "outputs")
    claim = _stale_claim(store)

    def b_wins() -> None:
        _win(store, storage, _engine())

    store_a = _PausedAfterRefusal(store, b_wins)
    status = run_claimed(claim, _engine(), store_a, storage, watch=_blind_watch(store_a, claim))
    assert store_a.refused == 1
    assert status == "queued", "A acted on what it read: the job before B took it"
    winner = store.get(claim.job.id)
    assert (winner.status, winner.attempts, winner.worker_id) == ("succeeded", 2, B)
    _assert_only_the_winners_file(store, storage, winner)


def test_stale_worker_finishing_after_the_winner_does_not_replace_its_output(
    store: JobStore, tmp_path: Path
) -> None:
    """B has won with its bytes; A finishes later with other bytes. The record keeps B's hash,
    and the file on disk must stay B's (a write over it would make verify report CORRUPT)."""
    storage = LocalStorage(tmp_path / "outputs")
    claim = _stale_claim(store)
    winner = _win(store, storage, _engine())
    quieter = _engine(_Quieter)
    status = run_claimed(claim, quieter, store, storage, watch=_blind_watch(store, claim))
    assert status == "succeeded"  # someone else's success, not ours
    assert store.get(claim.job.id).sha256 == winner.sha256
    _assert_only_the_winners_file(store, storage, winner)


def test_a_crash_between_putting_the_file_in_place_and_the_commit_leaves_a_retried_job(
    store: JobStore, tmp_path: Path
) -> None:
    """A's rename ran inside the transaction, then A died before the commit: the job is still
    A's running attempt, not a success. Retried, B's output replaces A's unrecorded bytes."""
    storage = LocalStorage(tmp_path / "outputs")
    store.create(new_job("The job both attempts make."))
    claim = store.claim(A, 30)
    assert claim is not None
    staged = stage(storage, claim, b"A's bytes, never recorded")
    result = Result("fake-1", 16_000, 1.0, staged.sha256, staged.size)

    def publish_then_die() -> None:
        staged.publish()
        raise KeyboardInterrupt  # the process dies here: the transaction never commits

    with pytest.raises(KeyboardInterrupt):
        store.complete(claim, result, publish_then_die)
    job = store.get(claim.job.id)
    assert (job.status, job.attempts, job.sha256) == ("running", 1, None)
    assert storage.path(job.output_name).read_bytes() == b"A's bytes, never recorded"

    assert store.release_worker(A, max_attempts=3).requeued == [job.id]
    winner = _win(store, storage, _engine())
    _assert_only_the_winners_file(store, storage, winner)


def test_a_success_is_never_visible_before_its_file(store: JobStore, tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "outputs")
    store.create(new_job())
    claim = store.claim(A, 30)
    assert claim is not None
    staged = stage(storage, claim, b"audio")
    seen: list[tuple[str, bool]] = []

    def publish() -> None:
        seen.append((store.get(claim.job.id).status, storage.exists(claim.job.output_name)))
        staged.publish()

    assert store.complete(claim, Result("fake-1", 16_000, 1.0, staged.sha256, staged.size), publish)
    assert seen == [("running", False)], "others still read the job as running meanwhile"
    assert storage.path(claim.job.output_name).read_bytes() == b"audio"
    assert not storage.exists(staged.name)


def test_publishing_again_after_a_failed_commit_finds_the_file_in_place(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "outputs")
    claim = _fake_claim("2026/12/31/output_x.wav", attempt=3)
    staged = stage(storage, claim, b"ours")
    assert staged.name == "2026/12/31/.tmp-output_x.wav.attempt-3"
    staged.publish()
    staged.publish()  # the retried transaction runs it again: the same file is there
    assert storage.path("2026/12/31/output_x.wav").read_bytes() == b"ours"

    other = stage(storage, _fake_claim("2026/12/31/output_x.wav", attempt=4), b"theirs")
    other.discard()
    with pytest.raises(StorageError, match=r"staged output .* is gone"):
        other.publish()  # never passes someone else's file off as ours
    assert storage.path("2026/12/31/output_x.wav").read_bytes() == b"ours"


@pytest.mark.parametrize(
    ("status", "output_kept"),
    [
        ("queued", True),
        ("running", True),
        ("succeeded", True),
        ("failed", False),
        ("canceled", False),
    ],
)
def test_a_lost_claim_removes_its_staged_file_and_the_output_only_of_a_job_without_one(
    tmp_path: Path, status: str, output_kept: bool
) -> None:
    storage = LocalStorage(tmp_path / "outputs")
    staged = stage(storage, _fake_claim("2026/12/31/output_x.wav", attempt=2), b"stale")
    storage.write_atomic("2026/12/31/output_x.wav", b"whatever an attempt put there")
    after_lost_claim(staged, status)
    assert not storage.exists(staged.name)
    assert storage.exists("2026/12/31/output_x.wav") is output_kept


def test_staged_names_are_temp_files_next_to_the_output() -> None:
    assert staged_name("2027/01/01/output_a.wav", 1) == "2027/01/01/.tmp-output_a.wav.attempt-1"
    assert staged_name("output_a.mp3", 12) == ".tmp-output_a.mp3.attempt-12"


def _fake_claim(output_name: str, attempt: int) -> Claim:
    return Claim(job=Job(id="j" * 32, output_name=output_name), worker_id=A, attempt=attempt)


def test_an_fsync_failing_after_the_rename_fails_the_job_and_leaves_no_orphan(
    store: JobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rename landed, then the folder's fsync failed: nothing was recorded, the job fails
    ``storage_error``, and the file that no record names is removed with the staged one."""
    storage = LocalStorage(tmp_path / "outputs")
    store.create(new_job("A job whose folder cannot be synced."))
    claim = store.claim(A, 30)
    assert claim is not None
    renamed: list[Path] = []
    real_replace, real_fsync = local.os.replace, local.fsync_dir

    def replace(source: Any, target: Any) -> None:
        real_replace(source, target)
        if not Path(target).name.startswith(TEMP_PREFIX):  # the publish, not the staged write
            renamed.append(Path(target))

    def fsync_dir(path: Path) -> None:
        if renamed:  # only once the output is in place: the staged write itself succeeds
            raise OSError(5, "Input/output error")
        real_fsync(path)

    monkeypatch.setattr(local.os, "replace", replace)
    monkeypatch.setattr(local, "fsync_dir", fsync_dir)
    assert run_claimed(claim, _engine(), store, storage) == "failed"
    job = store.get(claim.job.id)
    assert job.error_code == "storage_error"
    assert not storage.path(job.output_name).exists(), "an unrecorded output was left behind"
    assert not storage.path(staged_name(job.output_name, claim.attempt)).exists()


def test_a_staged_write_whose_folder_fsync_fails_leaves_no_staged_file(
    store: JobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalStorage(tmp_path / "outputs")
    store.create(new_job("A job whose staged file cannot be synced."))
    claim = store.claim(A, 30)
    assert claim is not None
    real_fsync, calls = local.fsync_dir, []

    def fsync_dir(path: Path) -> None:
        calls.append(path)
        if any(p.name.startswith(TEMP_PREFIX) for p in path.iterdir()):
            raise OSError(5, "Input/output error")  # after the staged file's rename
        real_fsync(path)

    monkeypatch.setattr(local, "fsync_dir", fsync_dir)
    assert run_claimed(claim, _engine(), store, storage) == "failed"
    job = store.get(claim.job.id)
    assert job.error_code == "storage_error"
    assert not storage.path(staged_name(job.output_name, claim.attempt)).exists()
