"""What one backup holds: the database snapshot and every file, each with its SHA-256.

A backup destination is laid out as::

    objects/<sha[:2]>/<sha256>            every output and reference, named by its content
    snapshots/<id>/database.sqlite        the SQLite snapshot (or database.pgdump: pg_dump -Fc)
    snapshots/<id>/manifest.json          this manifest, written last
    snapshots/<id>/manifest.json.sha256   the manifest's own checksum

Files are stored by content, not by name, so a later backup never overwrites what an earlier
one holds: every manifest stays restorable, identical files are stored once, and an object
whose bytes do not hash to its name is corrupt on sight. A snapshot folder without a manifest
is a backup that did not finish; restore and verify never use it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from steadyvoice.errors import BackupCorrupt

FORMAT = "steadyvoice-backup/1"
MANIFEST = "manifest.json"
CHECKSUM = "manifest.json.sha256"
DatabaseKind = Literal["sqlite", "postgresql"]
SNAPSHOT_FILES: dict[DatabaseKind, str] = {
    "sqlite": "database.sqlite",
    "postgresql": "database.pgdump",
}


def object_key(sha256: str) -> str:
    return f"objects/{sha256[:2]}/{sha256}"


def snapshot_key(snapshot_id: str, name: str) -> str:
    return f"snapshots/{snapshot_id}/{name}"


@dataclass(frozen=True)
class FileEntry:
    """One output (``area`` outputs, with its ``job_id``) or reference (``voices``, with its
    ``voice_id``), under its storage ``name``; its bytes are at :func:`object_key`."""

    area: Literal["outputs", "voices"]
    name: str
    sha256: str
    size: int
    job_id: str | None = None
    voice_id: str | None = None

    @property
    def key(self) -> str:
        return object_key(self.sha256)

    @property
    def label(self) -> str:
        return f"{self.job_id or self.voice_id} {self.area}/{self.name}"


@dataclass(frozen=True)
class DatabaseEntry:
    kind: DatabaseKind
    name: str  # under the snapshot's folder
    sha256: str
    size: int
    schema_revision: str | None


@dataclass
class Manifest:
    """Everything one ``backup create`` captured. ``missing`` and ``corrupt`` name records
    whose files could not be backed up (absent or not matching their SHA-256 at the source)."""

    id: str
    created_at: str
    finished_at: str
    steadyvoice_version: str
    database: DatabaseEntry
    files: list[FileEntry]
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    format: str = FORMAT

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), indent=1, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes, checksum: bytes) -> Manifest:
        """Parse a manifest, refusing one that does not match its checksum file."""
        expected = checksum.decode(errors="replace").split()[:1]
        if expected != [hashlib.sha256(data).hexdigest()]:
            raise BackupCorrupt("the manifest does not match its checksum file")
        raw: dict[str, Any] = json.loads(data)
        if raw.get("format") != FORMAT:
            raise BackupCorrupt(f"not a manifest this version reads: {raw.get('format')!r}")
        files = [FileEntry(**item) for item in raw.pop("files")]
        database = DatabaseEntry(**raw.pop("database"))
        return cls(database=database, files=files, **raw)


def checksum_line(data: bytes) -> bytes:
    """The checksum file's content, in ``sha256sum`` format (``sha256sum -c`` checks it)."""
    return f"{hashlib.sha256(data).hexdigest()}  {MANIFEST}\n".encode()
