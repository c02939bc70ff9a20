"""``backup restore``: fill an empty data dir (or empty PostgreSQL database and storage) from
one backup.

Refused unless the target database and both storage areas are empty: a restore never merges
into, or overwrites, a service's data. Files go first, each checked against its SHA-256 (and
written through the storage backend, which checks it again); the database goes last, so a
restore that stops half-way leaves no database and a service cannot start on half the files.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from steadyvoice.backup import catalog, snapshot
from steadyvoice.backup.destinations import Destination
from steadyvoice.backup.manifest import FileEntry, snapshot_key
from steadyvoice.errors import BackupCorrupt, RestoreTargetNotEmpty
from steadyvoice.settings import Settings, prepare_data_dir
from steadyvoice.storage.backend import AREAS, Storage, open_storage


@dataclass
class RestoreReport:
    snapshot: str
    source: str
    database: str
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0


def _occupants(settings: Settings, stores: dict[str, Storage]) -> list[str]:
    found = []
    database = snapshot.occupant(settings.resolved_database_url)
    if database is not None:
        found.append(database)
    for store in stores.values():
        first = next(iter(store.objects()), None)
        if first is not None:
            found.append(f"{store.describe()} holds {first.name}")
    return found


def restore(
    settings: Settings, dest: Destination, snapshot_id: str | None = None, parallel: int = 4
) -> RestoreReport:
    """Restore backup ``snapshot_id`` (the newest if None) from ``dest`` into the empty
    targets ``settings`` name; see the module docstring."""
    started = time.perf_counter()
    manifest = catalog.load(dest, snapshot_id)
    db = manifest.database
    report = RestoreReport(manifest.id, dest.describe(), db.kind, files=len(manifest.files))
    prepare_data_dir(settings)  # 0700, as serve makes it; also where local storage goes
    snapshot.check_kind(db.kind, settings.resolved_database_url)
    stores: dict[str, Storage] = {area: open_storage(settings, area) for area in AREAS}
    found = _occupants(settings, stores)
    if found:
        raise RestoreTargetNotEmpty(
            "backup restore fills only an empty target; found: " + "; ".join(found), found=found
        )

    def one(entry: FileEntry) -> int:
        data = _read_checked(dest, entry.key, entry.sha256, entry.label)
        stores[entry.area].put(entry.name, data, sha256=entry.sha256)
        return len(data)

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        report.bytes = sum(pool.map(one, manifest.files))
    base = settings.data_dir if settings.data_dir.is_dir() else None
    with tempfile.TemporaryDirectory(prefix=".restore-", dir=base) as work:
        path = Path(work) / db.name
        _fetch_checked(dest, snapshot_key(manifest.id, db.name), db.sha256, path)
        snapshot.restore(db.kind, path, settings.resolved_database_url)
    report.seconds = time.perf_counter() - started
    return report


def _read_checked(dest: Destination, key: str, sha256: str, label: str) -> bytes:
    try:
        data = catalog.read(dest, key)
    except FileNotFoundError:
        raise BackupCorrupt(f"{label}: missing from the backup ({key})") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise BackupCorrupt(f"{label}: does not match its SHA-256 in the backup ({key})")
    return data


def _fetch_checked(dest: Destination, key: str, sha256: str, path: Path) -> None:
    """The database snapshot into ``path``, streamed (it can be large) and checked."""
    digest = hashlib.sha256()
    try:
        with path.open("wb") as fh:
            for block in dest.chunks(key):
                digest.update(block)
                fh.write(block)
    except FileNotFoundError:
        raise BackupCorrupt(f"the database snapshot is missing from the backup ({key})") from None
    if digest.hexdigest() != sha256:
        raise BackupCorrupt(f"the database snapshot does not match its SHA-256 ({key})")
