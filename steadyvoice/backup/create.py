"""``backup create``: snapshot the database, then copy every file it records that the
destination lacks, then write the manifest (last: a backup without one never counts).

Files are read through the storage backend (local disk or S3), streamed, and stored by content
(:mod:`steadyvoice.backup.manifest`), so an incremental run copies only files whose content
is not there yet, and only a listing of the destination decides that.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from steadyvoice import __version__
from steadyvoice.backup import snapshot
from steadyvoice.backup.destinations import ChecksumMismatch, Destination
from steadyvoice.backup.manifest import (
    CHECKSUM,
    MANIFEST,
    SNAPSHOT_FILES,
    DatabaseEntry,
    FileEntry,
    Manifest,
    checksum_line,
    snapshot_key,
)
from steadyvoice.settings import Settings
from steadyvoice.storage.backend import AREAS, Storage, open_storage
from steadyvoice.storage.local import sha256_file


@dataclass
class CreateReport:
    """What one ``backup create`` did; healthy when every recorded file was backed up."""

    snapshot: str
    destination: str
    files: int = 0
    copied: int = 0
    copied_bytes: int = 0
    present: int = 0  # already in the destination (an earlier backup copied them)
    database_bytes: int = 0
    seconds: float = 0.0
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.missing and not self.corrupt


def new_snapshot_id(now: datetime) -> str:
    """Sortable by time, unique enough for two runs in one microsecond."""
    return f"{now:%Y%m%dT%H%M%S%fZ}-{os.urandom(3).hex()}"


def _workdir(settings: Settings) -> tempfile.TemporaryDirectory[str]:
    # Beside the database where there is a data dir (a SQLite snapshot is as big as it).
    base = settings.data_dir if settings.data_dir.is_dir() else None
    return tempfile.TemporaryDirectory(prefix=".backup-", dir=base)


def create(
    settings: Settings, dest: Destination, parallel: int = 4
) -> tuple[Manifest, CreateReport]:
    """Back the service that ``settings`` describe up to ``dest``; see the module docstring."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    report = CreateReport(new_snapshot_id(now), dest.describe())
    with _workdir(settings) as work:
        snap = snapshot.take(settings.resolved_database_url, Path(work))
        db_sha = sha256_file(snap.path)
        db_name = SNAPSHOT_FILES[snap.kind]
        report.database_bytes = dest.put_file(
            snapshot_key(report.snapshot, db_name), snap.path, db_sha
        )
    database = DatabaseEntry(
        snap.kind, db_name, db_sha, report.database_bytes, snap.schema_revision
    )
    files = _copy_files(settings, dest, snap.records, report, parallel)
    manifest = Manifest(
        id=report.snapshot,
        created_at=now.isoformat(),
        finished_at=datetime.now(UTC).isoformat(),
        steadyvoice_version=__version__,
        database=database,
        files=files,
        missing=report.missing,
        corrupt=report.corrupt,
    )
    dest.flush()  # every object and the snapshot durable before the manifest names them
    data = manifest.to_bytes()
    dest.put(snapshot_key(report.snapshot, MANIFEST), [data], hashlib.sha256(data).hexdigest())
    line = checksum_line(data)
    dest.put(snapshot_key(report.snapshot, CHECKSUM), [line], hashlib.sha256(line).hexdigest())
    dest.flush()
    report.seconds = time.perf_counter() - started
    return manifest, report


def _copy_files(
    settings: Settings,
    dest: Destination,
    records: list[snapshot.Record],
    report: CreateReport,
    parallel: int,
) -> list[FileEntry]:
    stores: dict[str, Storage] = {area: open_storage(settings, area) for area in AREAS}
    present = dest.sizes("objects/")

    def one(record: snapshot.Record) -> tuple[str, FileEntry]:
        entry = FileEntry(record.area, record.name, record.sha256 or "", 0, **_owner(record))
        if record.sha256 is None:
            return "unrecorded", entry
        if entry.key in present and record.size in (None, present[entry.key]):
            return "present", _sized(entry, present[entry.key])
        try:
            size = dest.put(entry.key, stores[record.area].chunks(record.name), record.sha256)
        except FileNotFoundError:
            return "missing", entry
        except ChecksumMismatch:
            return "corrupt", entry
        present[entry.key] = size  # the same content named twice is copied once
        return "copied", _sized(entry, size)

    files = []
    report.files = len(records)
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        for outcome, entry in pool.map(one, records):
            if outcome in ("copied", "present"):
                files.append(entry)
                report.copied += outcome == "copied"
                report.copied_bytes += entry.size if outcome == "copied" else 0
                report.present += outcome == "present"
            elif outcome == "missing":
                report.missing.append(entry.label)
            else:
                reason = " (no SHA-256 recorded)" if outcome == "unrecorded" else ""
                report.corrupt.append(entry.label + reason)
    return files


def _owner(record: snapshot.Record) -> dict[str, str]:
    return {"job_id": record.owner} if record.area == "outputs" else {"voice_id": record.owner}


def _sized(entry: FileEntry, size: int) -> FileEntry:
    return FileEntry(entry.area, entry.name, entry.sha256, size, entry.job_id, entry.voice_id)
