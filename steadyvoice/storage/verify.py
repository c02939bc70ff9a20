"""Re-hash every recorded output and reference; report what is missing, corrupt or unrecorded,
and what other users may read."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from steadyvoice.jobs.models import Job
from steadyvoice.jobs.states import JobStatus
from steadyvoice.jobs.store import JobStore
from steadyvoice.settings import Settings
from steadyvoice.storage.local import LocalStorage, sha256_file
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

    @property
    def healthy(self) -> bool:
        return not self.missing and not self.corrupt


def _check(report: VerifyReport, label: str, path: Path, sha256: str | None) -> None:
    report.checked += 1
    if not path.is_file():
        report.missing.append(label)
    elif sha256_file(path) != sha256:
        report.corrupt.append(label)
    else:
        report.ok += 1
    loose = loose_mode(path, PRIVATE_FILE)
    if loose is not None:
        report.loose.append(str(loose))


def _succeeded(store: JobStore, batch: int) -> Iterator[tuple[str, str, str | None]]:
    """``(id, output_name, sha256)`` of succeeded jobs by id, ``batch`` rows per transaction."""
    after = ""
    while True:
        q = (
            select(Job.id, Job.output_name, Job.sha256)
            .where(Job.status == JobStatus.SUCCEEDED.value, Job.id > after)
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


def verify_outputs(store: JobStore, storage: LocalStorage, batch: int = BATCH) -> VerifyReport:
    """Every succeeded job's file must exist and hash to the recorded SHA-256."""
    report = VerifyReport()
    recorded: set[str] = set()
    for job_id, name, sha256 in _succeeded(store, batch):
        recorded.add(name)
        _check(report, f"{job_id} {name}", storage.path(name), sha256)
    unrecorded = [n for n in storage.names() if n not in recorded]
    late = _recorded_since(store, unrecorded, batch) if unrecorded else set()
    report.unrecorded = [n for n in unrecorded if n not in late]
    report.temporary = list(storage.temporary())
    return report


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
    voices: Iterable[Voice], storage: LocalStorage, report: VerifyReport
) -> VerifyReport:
    """Every voice profile's reference (deleted profiles too) must hash to its SHA-256.

    A reference file that no profile names (a crash between writing it and recording the
    profile) is listed as unrecorded: someone's voice on disk without a consent record.
    """
    recorded: set[str] = set()
    for voice in voices:
        recorded.add(voice.reference_name)
        label = f"{voice.id} voices/{voice.reference_name}"
        _check(report, label, storage.path(voice.reference_name), voice.reference_sha256)
    report.unrecorded += [
        f"voices/{name}" for name in storage.names("*/reference.*") if name not in recorded
    ]
    return report


def verify_modes(
    settings: Settings, sqlite_path: Path | None, report: VerifyReport
) -> VerifyReport:
    """The data dir, the database and the admin key must be private to the service's user
    (each output and reference is checked as it is hashed)."""
    report.loose += [str(loose) for loose in loose_modes(settings, sqlite_path)]
    return report
