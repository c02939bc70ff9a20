"""``verify`` reads in short batches: a WAL checkpoint completes while it runs, and every row is
seen once however the batches fall."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from factories import new_job  # type: ignore[import-not-found]
from sqlalchemy import event, update
from sqlalchemy.engine import Connection

from steadyvoice.jobs.models import Job, utcnow
from steadyvoice.jobs.store import JobStore
from steadyvoice.storage.local import LocalStorage
from steadyvoice.storage.verify import verify_outputs, verify_references, voices_in_batches
from steadyvoice.voices.models import Voice

pytestmark = pytest.mark.timeout(120)


def _succeeded(store: JobStore, storage: LocalStorage, count: int) -> list[str]:
    """``count`` succeeded jobs with their outputs on disk; their ids."""
    ids = []
    for n in range(count):
        job, _ = store.create(new_job(f"text {n}"))
        sha, size = storage.write_atomic(job.output_name, f"audio {n}".encode())
        with store.session() as s:
            s.execute(
                update(Job)
                .where(Job.id == job.id)
                .values(status="succeeded", sha256=sha, size_bytes=size, finished_at=utcnow())
            )
        ids.append(job.id)
    return ids


class CheckpointingStorage(LocalStorage):
    """Storage that, when verify asks for its ``at``-th file, writes to the database from
    another connection and runs a TRUNCATE checkpoint, as SQLite's auto-checkpoint would try."""

    def __init__(self, root: Path, db: Path) -> None:
        super().__init__(root)
        self._db, self._at, self._calls = db, 0, 0
        self.checkpoint: tuple[int, int, int] | None = None

    def arm(self, at: int) -> None:
        self._at, self._calls = at, 0

    def path(self, name: str) -> Path:
        self._calls += 1
        if self._calls == self._at:
            conn = sqlite3.connect(self._db, timeout=0.2)
            try:
                conn.execute(
                    "INSERT INTO refusals (at, reason, count, chars) VALUES (?, 'deadline', 1, 1)",
                    (utcnow().isoformat(),),
                )
                conn.commit()
                self.checkpoint = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                conn.close()
        return super().path(name)


def test_a_wal_checkpoint_completes_while_verify_runs(
    tmp_path: Path, store_factory: Callable[[str], JobStore]
) -> None:
    db = tmp_path / "verify.db"
    store = store_factory(f"sqlite:///{db}")
    storage = CheckpointingStorage(tmp_path / "outputs", db)
    _succeeded(store, storage, 5)
    storage.arm(at=4)  # mid-run: two batches read, one still to come
    report = verify_outputs(store, storage, batch=2)
    assert storage.checkpoint is not None, "verify never reached the middle of its run"
    busy, wal_frames, _ = storage.checkpoint
    assert busy == 0, "verify's read transaction blocked the checkpoint"
    assert wal_frames == 0
    assert (report.checked, report.ok) == (5, 5) and report.healthy


def _count_job_reads(store: JobStore, table: str) -> tuple[list[str], Callable[[], None]]:
    seen: list[str] = []

    def spy(conn: Connection, cursor: object, statement: str, *_: object) -> None:
        flat = " ".join(statement.split()).lower()
        if flat.startswith("select") and f"from {table}" in flat and "limit" in flat:
            seen.append(flat)

    event.listen(store.engine, "before_cursor_execute", spy)
    return seen, lambda: event.remove(store.engine, "before_cursor_execute", spy)


def test_outputs_are_read_in_batches_and_each_seen_once(store: JobStore, tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "outputs")
    ids = _succeeded(store, storage, 7)
    store.create(new_job("still queued"))
    reads, stop = _count_job_reads(store, "jobs")
    try:
        report = verify_outputs(store, storage, batch=3)
    finally:
        stop()
    assert len(reads) == 3, "7 rows in batches of 3"
    assert all("jobs.id >" in r for r in reads), "keyset pagination by id"
    assert (report.checked, report.ok) == (7, 7) and report.healthy
    assert [label.split(" ", 1)[0] for label in report.missing] == []
    assert report.unrecorded == []
    # Exactly a multiple of the batch: one more (empty) read ends the run.
    more = verify_outputs(store, storage, batch=7)
    assert more.checked == len(ids)


def test_an_output_recorded_while_verify_ran_is_not_unrecorded(
    store: JobStore, tmp_path: Path
) -> None:
    """A job that succeeds behind verify's cursor has a file verify did not see recorded."""
    storage = LocalStorage(tmp_path / "outputs")
    _succeeded(store, storage, 2)
    late: list[str] = []

    class LateStorage(LocalStorage):
        def names(self, pattern: str = "**/output_*") -> Iterator[str]:
            if not late:
                late.extend(_succeeded(store, storage, 1))
            yield from super().names(pattern)

    report = verify_outputs(store, LateStorage(tmp_path / "outputs"), batch=1)
    assert report.checked == 2
    assert report.unrecorded == []


def _voice(store: JobStore, voice_id: str, storage: LocalStorage) -> None:
    name = f"{voice_id}/reference.wav"
    sha, size = storage.write_atomic(name, voice_id.encode())
    with store.session() as s:
        s.add(
            Voice(
                id=voice_id,
                name=voice_id,
                created_by="test",
                tenant="default",
                created_at=utcnow() - timedelta(minutes=1),
                consent="I agree to this.",
                reference_name=name,
                reference_sha256=sha,
                reference_bytes=size,
                reference_format="wav",
                sample_rate=16_000,
                channels=1,
                file_seconds=5.0,
                speech_seconds=4.0,
                measurements={},
                analysis={},
                analysis_version="1",
            )
        )


def test_voices_are_read_in_batches(store: JobStore, tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "voices")
    for n in range(5):
        _voice(store, f"voice{n}", storage)
    reads, stop = _count_job_reads(store, "voices")
    try:
        voices = list(voices_in_batches(store, batch=2))
    finally:
        stop()
    assert [v.id for v in voices] == [f"voice{n}" for n in range(5)]
    assert len(reads) == 3
    report = verify_outputs(store, LocalStorage(tmp_path / "outputs"))
    report = verify_references(voices, storage, report)
    assert (report.checked, report.ok) == (5, 5) and report.healthy
