"""Which finished backups a destination holds, and reading one's manifest."""

from __future__ import annotations

from steadyvoice.backup.destinations import Destination
from steadyvoice.backup.manifest import CHECKSUM, MANIFEST, Manifest, snapshot_key
from steadyvoice.errors import BackupCorrupt, BackupNotFound


def finished(dest: Destination) -> list[str]:
    """Ids of the snapshots with a manifest (finished backups), oldest first."""
    suffix = f"/{CHECKSUM}"
    keys = dest.sizes("snapshots/")
    return sorted(key.split("/")[1] for key in keys if key.endswith(suffix) and key.count("/") == 2)


def read(dest: Destination, key: str) -> bytes:
    return b"".join(dest.chunks(key))


def load(dest: Destination, snapshot_id: str | None = None) -> Manifest:
    """The manifest of ``snapshot_id`` (the newest finished backup if None), checked against
    its checksum file."""
    ids = finished(dest)
    if snapshot_id is None and not ids:
        raise BackupNotFound(f"no finished backup in {dest.describe()}")
    chosen = snapshot_id or ids[-1]
    if chosen not in ids:
        raise BackupNotFound(
            f"no finished backup {chosen!r} in {dest.describe()}", available=ids[-5:]
        )
    try:
        data = read(dest, snapshot_key(chosen, MANIFEST))
    except FileNotFoundError:
        raise BackupCorrupt(f"backup {chosen}: the manifest is missing") from None
    manifest = Manifest.from_bytes(data, read(dest, snapshot_key(chosen, CHECKSUM)))
    if manifest.id != chosen:
        raise BackupCorrupt(f"backup {chosen}: its manifest names {manifest.id}")
    return manifest
