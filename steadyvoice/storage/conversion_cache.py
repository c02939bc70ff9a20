"""Converted downloads kept on disk, so a repeat costs no conversion.

A conversion is deterministic, so its result is kept under a key made of everything that decides
its bytes: the source file's SHA-256 (never its job id, so an entry can only be served for the
very bytes it was made from), the source and target formats, the sample rate, and the converter
and codec library versions (:func:`~steadyvoice.audio.conversion.conversion_tag`). An upgrade
that could change the bytes changes the key; old entries simply age out.

Entries are written to a temporary file in the same folder, fsynced, and renamed into place, so
a reader sees a whole file or none, also when two processes (or two API processes on one data
dir) make the same entry at once: the last rename wins, with identical bytes.

The folder is bounded by ``max_bytes``: after each new entry the least recently used ones (by
modification time, which a hit refreshes) are deleted until the total fits. An entry used in the
last :data:`GRACE_SECONDS` is kept even over the bound, since a download may be about to open
it; so the total can exceed the bound by what was used in that last minute, no more.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from steadyvoice.storage.local import TEMP_PREFIX, LocalStorage, full_disk_named

GRACE_SECONDS = 60.0
# Temporary files older than this were left by a conversion that was killed.
STALE_TEMP_SECONDS = 3_600.0


def cache_key(source_sha256: str, sample_rate: int, tag: str) -> str:
    """The name of an entry: a hash of everything that decides the converted bytes."""
    return hashlib.sha256(f"{source_sha256}|{sample_rate}|{tag}".encode()).hexdigest()


class ConversionCache:
    """Files named ``<key>.<extension>`` in one folder, at most about ``max_bytes`` in all."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def get(self, name: str) -> Path | None:
        """The entry ``name``, marked as just used, or ``None``."""
        path = self.root / name
        try:
            os.utime(path)
        except FileNotFoundError:
            return None
        return path

    @full_disk_named
    def put(self, name: str, write: Callable[[BinaryIO], object]) -> Path:
        """Make entry ``name`` from what ``write`` writes to a seekable file; then evict."""
        path = self.write_temporary(write)
        try:
            os.replace(path, self.root / name)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        self.evict(keep=name)
        return self.root / name

    @full_disk_named
    def write_temporary(self, write: Callable[[BinaryIO], object]) -> Path:
        """A new temporary file (not an entry) holding what ``write`` wrote; the caller
        renames or deletes it (:meth:`sweep_temporary` deletes it if it is forgotten)."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.sweep_temporary()
        path = self.root / f"{TEMP_PREFIX}{os.getpid()}-{os.urandom(8).hex()}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w+b") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    def evict(self, keep: str | None = None, now: float | None = None) -> list[str]:
        """Delete the least recently used entries until the total fits ``max_bytes``; return
        their names. ``keep`` and entries used in the last :data:`GRACE_SECONDS` stay."""
        now = time.time() if now is None else now
        entries = []
        total = 0
        for entry in self._scan():
            total += entry[2]
            entries.append(entry)
        removed = []
        for mtime, name, size in sorted(entries):
            if total <= self.max_bytes:
                break
            if name == keep or now - mtime < GRACE_SECONDS:
                continue
            with contextlib.suppress(FileNotFoundError):
                (self.root / name).unlink()
            total -= size
            removed.append(name)
        return removed

    def sweep_temporary(self, now: float | None = None) -> None:
        """Delete temporary files left by conversions that were killed."""
        LocalStorage(self.root).sweep_temporary(STALE_TEMP_SECONDS, now)

    def total_bytes(self) -> int:
        return sum(size for _, _, size in self._scan())

    def _scan(self) -> list[tuple[float, str, int]]:
        """(modification time, name, size) of every entry; temporary files are not entries."""
        found = []
        with contextlib.suppress(FileNotFoundError):
            for item in os.scandir(self.root):
                if item.name.startswith(TEMP_PREFIX) or not item.is_file():
                    continue
                with contextlib.suppress(FileNotFoundError):
                    stat = item.stat()
                    found.append((stat.st_mtime, item.name, stat.st_size))
        return found
