"""Local-disk output storage with atomic, fsynced writes."""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import ParamSpec, TypeVar

from steadyvoice.errors import StorageError, StorageFull
from steadyvoice.storage.backend import ObjectInfo

CHUNK = 1024 * 1024
# Names of files being written (or left by a write that was killed): never an output.
TEMP_PREFIX = ".tmp-"
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})

P = ParamSpec("P")
R = TypeVar("R")


def full_disk_named(write: Callable[P, R]) -> Callable[P, R]:
    """A full disk (or a spent quota), whichever step of ``write`` hit it, raised as
    ``storage_full``; any other OS error goes up as it is."""

    @functools.wraps(write)
    def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return write(*args, **kwargs)
        except OSError as exc:
            if exc.errno not in DISK_FULL:
                raise
            where = f" ({exc.filename})" if exc.filename else ""
            raise StorageFull(f"no space left on the disk to write{where}: {exc.strerror}") from exc

    return checked


def fsync_dir(path: Path) -> None:
    """Make the entries of directory ``path`` (files and folders added or renamed) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: Path) -> None:
    """``mkdir -p`` that survives a crash: after creating each missing folder, top down, the
    folder that holds it is fsynced. Without that, the first file of a new day, month or year
    could have a committed record and a path lost in a power cut. Folders that were there
    already cost nothing (the caller fsyncs the leaf once its file is in place).
    """
    missing: list[Path] = []
    probe = path
    while not probe.is_dir():
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            if not folder.is_dir():
                raise
            # Made a moment ago by a concurrent write, which may not have fsynced it yet.
        fsync_dir(folder.parent)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


class LocalStorage:
    """Files under one root directory, addressed only by names the service made: the ``local``
    backend (:class:`~steadyvoice.storage.backend.Storage`)."""

    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        return str(self.root)

    def put(self, name: str, data: bytes, sha256: str | None = None) -> tuple[str, int]:
        """:meth:`write_atomic`, refusing ``data`` that does not hash to ``sha256``."""
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise StorageError(f"refused {name}: the data does not match its SHA-256")
        return self.write_atomic(name, data)

    def chunks(self, name: str, size: int = CHUNK) -> Iterator[bytes]:
        with self.path(name).open("rb") as fh:
            yield from iter(lambda: fh.read(size), b"")

    def stat(self, name: str) -> ObjectInfo | None:
        try:
            st = self.path(name).stat()
        except FileNotFoundError:
            return None
        return ObjectInfo(name, st.st_size, None, st.st_mtime)

    def objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if not self.root.exists():
            return
        for path in sorted(self.root.rglob("*")):
            name = path.relative_to(self.root).as_posix()
            if not name.startswith(prefix) or not path.is_file():
                continue
            info = self.stat(name)
            if info is not None:  # gone meanwhile otherwise
                yield info

    def ping(self) -> None:
        """The disk is always reachable; a full one is readiness's ``low_disk``."""

    def unreachable(self) -> str | None:
        return None

    def path(self, name: str) -> Path:
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise ValueError(f"not a storage name: {name!r}")
        return self.root.joinpath(*rel.parts)

    @full_disk_named
    def write_atomic(self, name: str, data: bytes) -> tuple[str, int]:
        """Write via temp file + fsync + rename + directory fsync. Returns (sha256, size)."""
        target = self.path(name)
        make_dirs(target.parent)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        fsync_dir(target.parent)
        return hashlib.sha256(data).hexdigest(), len(data)

    @full_disk_named
    def replace(self, name: str, new_name: str) -> None:
        """Rename ``name`` to ``new_name`` (replacing what is there) and fsync the folder."""
        source, target = self.path(name), self.path(new_name)
        os.replace(source, target)
        fsync_dir(target.parent)
        if source.parent != target.parent:
            fsync_dir(source.parent)

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def delete(self, name: str, *, retries: int | None = None) -> None:
        self.path(name).unlink(missing_ok=True)

    def names(self, pattern: str = "**/output_*") -> Iterator[str]:
        """Every stored file name matching ``pattern`` (outputs by default; temp files never)."""
        if not self.root.exists():
            return
        for path in sorted(self.root.glob(pattern)):
            if path.is_file():
                yield path.relative_to(self.root).as_posix()

    def temporaries(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for name in self.temporary():
            info = self.stat(name) if name.startswith(prefix) else None
            if info is not None:  # gone meanwhile otherwise
                yield info

    def temporary(self) -> Iterator[str]:
        """Temp files (``.tmp-`` names): writes in progress, or left by writes that were killed."""
        yield from self.names(f"**/{TEMP_PREFIX}*")

    def sweep_temporary(self, older_than: float, now: float | None = None) -> list[str]:
        """Remove temp files last changed more than ``older_than`` seconds ago (a write takes
        seconds at most); returns their names."""
        now = time.time() if now is None else now
        removed: list[str] = []
        for name in list(self.temporary()):
            path = self.path(name)
            try:
                if now - path.stat().st_mtime < older_than:
                    continue
                path.unlink()
            except FileNotFoundError:
                continue  # finished (renamed) or removed meanwhile
            removed.append(name)
        return removed

    def free_bytes(self) -> int:
        probe = self.root if self.root.exists() else self.root.parent
        while not probe.exists():
            probe = probe.parent
        return shutil.disk_usage(probe).free
