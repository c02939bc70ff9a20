"""``backup verify``: re-read and re-hash everything one backup needs, from the destination.

The manifest must match its checksum file, the database snapshot its SHA-256, and every file
object its SHA-256 and size. Objects are read whole (on S3 too: a checksum the store reports
was computed when it was written, and this is the check that the bytes are still right).
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from steadyvoice.backup import catalog
from steadyvoice.backup.destinations import Destination
from steadyvoice.backup.manifest import snapshot_key


@dataclass
class VerifyReport:
    snapshot: str
    destination: str
    checked: int = 0
    ok: int = 0
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    # Records the backup itself says it could not capture (absent or corrupt at the source).
    incomplete: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.missing and not self.corrupt and not self.incomplete


def _hash(dest: Destination, key: str) -> tuple[str, int] | None:
    digest = hashlib.sha256()
    size = 0
    try:
        for block in dest.chunks(key):
            digest.update(block)
            size += len(block)
    except FileNotFoundError:
        return None
    return digest.hexdigest(), size


def verify(dest: Destination, snapshot_id: str | None = None, parallel: int = 4) -> VerifyReport:
    """Check the backup ``snapshot_id`` (the newest if None) in ``dest``."""
    manifest = catalog.load(dest, snapshot_id)
    report = VerifyReport(manifest.id, dest.describe())
    report.incomplete = [f"missing at source: {m}" for m in manifest.missing]
    report.incomplete += [f"corrupt at source: {c}" for c in manifest.corrupt]
    db = manifest.database
    wanted = {snapshot_key(manifest.id, db.name): (db.sha256, db.size, f"database {db.name}")}
    for entry in manifest.files:  # identical content is one object, checked once
        wanted.setdefault(entry.key, (entry.sha256, entry.size, entry.label))

    def one(key: str) -> tuple[str, tuple[str, int] | None]:
        return key, _hash(dest, key)

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        for key, found in pool.map(one, sorted(wanted)):
            sha256, size, label = wanted[key]
            report.checked += 1
            if found is None:
                report.missing.append(f"{label} ({key})")
            elif found != (sha256, size):
                report.corrupt.append(f"{label} ({key})")
            else:
                report.ok += 1
    return report
