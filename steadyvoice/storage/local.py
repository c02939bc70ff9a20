"""Local-disk output storage with atomic, fsynced writes."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

CHUNK = 1024 * 1024


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


class LocalStorage:
    """Files under one root directory, addressed only by names the service made."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> Path:
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise ValueError(f"not a storage name: {name!r}")
        return self.root.joinpath(*rel.parts)

    def write_atomic(self, name: str, data: bytes) -> tuple[str, int]:
        """Write via temp file + fsync + rename + directory fsync. Returns (sha256, size)."""
        target = self.path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return hashlib.sha256(data).hexdigest(), len(data)

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def names(self, pattern: str = "**/output_*") -> Iterator[str]:
        """Every stored file name matching ``pattern`` (outputs by default; temp files never)."""
        if not self.root.exists():
            return
        for path in sorted(self.root.glob(pattern)):
            if path.is_file():
                yield path.relative_to(self.root).as_posix()

    def free_bytes(self) -> int:
        probe = self.root if self.root.exists() else self.root.parent
        while not probe.exists():
            probe = probe.parent
        return shutil.disk_usage(probe).free
