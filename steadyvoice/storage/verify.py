"""Check every recorded output and reference; report what is missing, corrupt or unrecorded,
and what other users may read.

Works on any backend (:mod:`steadyvoice.storage.backend`): where the store reports an object's
SHA-256 (S3, uploaded with ``x-amz-checksum-sha256``) size and checksum are compared from
``HeadObject`` alone, without downloading; elsewhere the file is read and hashed.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from steadyvoice.jobs.models import Job
from steadyvoice.jobs.states import JobStatus
from steadyvoice.jobs.store import JobStore
from steadyvoice.settings import Settings
from steadyvoice.storage.backend import ObjectInfo, Storage, content_sha256, open_storage
from steadyvoice.storage.local import TEMP_PREFIX, LocalStorage
from steadyvoice.storage.modes import PRIVATE_FILE, loose_mode, loose_modes
from steadyvoice.voices.models import Voice

# Rows read per transaction. Hashing happens between batches, outside any transaction, so a
# long run never holds a read snapshot (on SQLite that would stop WAL checkpoints meanwhile).
BATCH = 500


@dataclass
class VerifyReport:
    checked: int = 0
    ok: int = 0
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    unrecorded: list[str] = field(default_factory=list)
    # Temp files under outputs/: writes in progress, or staged by attempts that were killed
    # (serve and a standalone worker sweep old ones at start). Listed; never unhealthy.
    temporary: list[str] = field(default_factory=list)
    # Files and folders other users may read (steadyvoice.storage.modes). Listed, with the
    # chmod that fixes each; never unhealthy.
    loose: list[str] = field(default_factory=list)
    # Unrecorded outputs removed by ``--sweep-unrecorded`` (sweep_unrecorded) before the check.
    swept: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.missing and not self.corrupt


def _check(
    report: VerifyReport, label: str, storage: Storage, name: str, sha256: str | None
) -> None:
    report.checked += 1
    info = storage.stat(name)
    if info is None:
        report.missing.append(label)
    elif _sha256(storage, info) != sha256:
        report.corrupt.append(label)
    else:
        report.ok += 1
    if isinstance(storage, LocalStorage):
        loose = loose_mode(storage.path(name), PRIVATE_FILE)
        if loose is not None:
            report.loose.append(str(loose))


def _sha256(storage: Storage, info: ObjectInfo) -> str | None:
    return info.sha256 if info.sha256 is not None else content_sha256(storage, info.name)


def _base(name: str) -> str:
    return name.rpartition("/")[2]


def is_output(name: str) -> bool:
    return _base(name).startswith("output_")


def is_reference(name: str) -> bool:
    folder, _, base = name.rpartition("/")
    return bool(folder) and "/" not in folder and base.startswith("reference.")


def _succeeded(store: JobStore, batch: int) -> Iterator[tuple[str, str, str | None]]:
    """``(id, output_name, sha256)`` of succeeded jobs by id, ``batch`` rows per transaction;
    jobs whose audio retention purged are not expected to have it (a file left is unrecorded)."""
    after = ""
    while True:
        q = (
            select(Job.id, Job.output_name, Job.sha256)
            .where(Job.status == JobStatus.SUCCEEDED.value, Job.purged_at.is_(None), Job.id > after)
            .order_by(Job.id)
            .limit(batch)
        )
        with store.reading() as s:
            rows = [(str(i), str(name), sha) for i, name, sha in s.execute(q)]
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1][0]


def _recorded_since(store: JobStore, names: list[str], batch: int) -> set[str]:
    """Those of ``names`` that a succeeded job names now (it succeeded while verify ran)."""
    found: set[str] = set()
    for i in range(0, len(names), batch):
        q = select(Job.output_name).where(
            Job.status == JobStatus.SUCCEEDED.value, Job.output_name.in_(names[i : i + batch])
        )
        with store.reading() as s:
            found.update(str(name) for name in s.scalars(q))
    return found


def verify_outputs(store: JobStore, storage: Storage, batch: int = BATCH) -> VerifyReport:
    """Every succeeded job's file must exist and hash to the recorded SHA-256."""
    report = VerifyReport()
    recorded: set[str] = set()
    for job_id, name, sha256 in _succeeded(store, batch):
        recorded.add(name)
        _check(report, f"{job_id} {name}", storage, name, sha256)
    stored = [info.name for info in storage.objects()]
    unrecorded = [n for n in stored if is_output(n) and n not in recorded]
    late = _recorded_since(store, unrecorded, batch) if unrecorded else set()
    report.unrecorded = [n for n in unrecorded if n not in late]
    report.temporary = [n for n in stored if _base(n).startswith(TEMP_PREFIX)]
    return report


def sweep_unrecorded(
    store: JobStore, storage: Storage, older_than: float, batch: int = BATCH
) -> list[str]:
    """Remove outputs that no job records, once ``older_than`` seconds old: left by a crash
    between putting the output in place and recording it, for a job that then failed.

    An output that a queued or running job names is kept whatever its age (its attempt may be
    recording it right now), and so is one whose job succeeded meanwhile. Opt-in
    (``steadyvoice verify --sweep-unrecorded SECONDS``): after restoring an older database
    snapshot, outputs of jobs finished since it are unrecorded too, and are evidence.
    """
    now = time.time()
    old = [
        info.name
        for info in storage.objects()
        if is_output(info.name) and now - info.modified >= older_than
    ]
    if not old:
        return []
    named = _named(store, old, batch)
    gone = [name for name in old if name not in named]
    for name in gone:
        storage.delete(name)
    return gone


def _named(store: JobStore, names: list[str], batch: int) -> set[str]:
    """Those of ``names`` that a succeeded, queued or running job names."""
    alive = (JobStatus.SUCCEEDED.value, JobStatus.QUEUED.value, JobStatus.RUNNING.value)
    found: set[str] = set()
    for i in range(0, len(names), batch):
        q = select(Job.output_name).where(
            Job.status.in_(alive), Job.output_name.in_(names[i : i + batch])
        )
        with store.reading() as s:
            found.update(str(name) for name in s.scalars(q))
    return found


def verify_storage(
    settings: Settings, store: JobStore, sweep_older_than: float | None = None
) -> VerifyReport:
    """``steadyvoice verify``: outputs and references on the configured backend; with
    ``sweep_older_than``, unrecorded outputs that old are removed first
    (:func:`sweep_unrecorded`) and listed in ``swept``."""
    outputs = open_storage(settings, "outputs")
    swept = [] if sweep_older_than is None else sweep_unrecorded(store, outputs, sweep_older_than)
    report = verify_outputs(store, outputs)
    report.swept = swept
    return verify_references(voices_in_batches(store), open_storage(settings, "voices"), report)


def voices_in_batches(store: JobStore, batch: int = BATCH) -> Iterator[Voice]:
    """Every voice profile (deleted ones too) by id, ``batch`` rows per transaction."""
    after = ""
    while True:
        q = select(Voice).where(Voice.id > after).order_by(Voice.id).limit(batch)
        with store.reading() as s:
            rows = list(s.scalars(q))
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].id


def verify_references(
    voices: Iterable[Voice], storage: Storage, report: VerifyReport
) -> VerifyReport:
    """Every voice profile's reference (deleted profiles too) must hash to its SHA-256.

    A reference file that no profile names (a crash between writing it and recording the
    profile) is listed as unrecorded: someone's voice on disk without a consent record.
    """
    recorded: set[str] = set()
    for voice in voices:
        recorded.add(voice.reference_name)
        label = f"{voice.id} voices/{voice.reference_name}"
        _check(report, label, storage, voice.reference_name, voice.reference_sha256)
    report.unrecorded += [
        f"voices/{info.name}"
        for info in storage.objects()
        if is_reference(info.name) and info.name not in recorded
    ]
    return report


def verify_modes(
    settings: Settings, sqlite_path: Path | None, report: VerifyReport
) -> VerifyReport:
    """The data dir, the database and the admin key must be private to the service's user
    (each output and reference is checked as it is hashed)."""
    report.loose += [str(loose) for loose in loose_modes(settings, sqlite_path)]
    return report
