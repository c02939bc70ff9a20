"""One writer at a time per SQLite file in a process, queued on a lock instead of polling.

SQLite lets one connection write to a file at a time. A connection that finds it taken waits in
its busy handler, which sleeps and tries again (after 1, 2, 5, 10, ... up to 100 ms): with many
threads of one process writing at once (a rate window and an audit row per request, in a burst
of downloads) the lock often sits free while its waiters sleep, and the one that gets it next is
whoever wakes first. A write of a millisecond then waited up to a second (docs/benchmarks.md, the
conversion storm). Here a process's write transactions on one file first take that file's lock
(:class:`WriterConnection`), so the next starts as soon as the last one ends, and the busy
handler is left to arbitrate between processes (the API and its workers) only.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from typing import Any

_locks: dict[str, threading.Lock] = {}  # one per database file: SQLite's lock is per file
_locks_guard = threading.Lock()


def writer_lock(database: object) -> threading.Lock | None:
    """The process's lock for writing to ``database`` (a path); None for an in-memory database or
    a URI, where there is no file to share."""
    if not isinstance(database, (str, os.PathLike)):
        return None
    name = os.fspath(database)
    if isinstance(name, bytes) or name in ("", ":memory:") or name.startswith("file:"):
        return None
    key = os.path.realpath(name)
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


class WriterConnection(sqlite3.Connection):
    """A ``sqlite3`` connection (``factory=``) whose write transactions hold their file's
    process-wide lock from :meth:`take_writer_lock` (before ``BEGIN IMMEDIATE``) until they
    commit, roll back or the connection closes."""

    def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self._writers = writer_lock(database)
        self._patience = float(kwargs.get("timeout", 5.0))  # as long as the busy handler's
        self._writing = False

    def take_writer_lock(self) -> float:
        """Wait for this file's other writers in the process; the seconds of the busy timeout
        left for ``BEGIN IMMEDIATE`` (the two waits share one deadline). Past the busy timeout,
        go on without it: ``BEGIN IMMEDIATE`` then fails at once, as it would have."""
        lock = self._writers
        if lock is None or self._writing:
            return self._patience
        began = time.monotonic()
        self._writing = lock.acquire(timeout=self._patience)
        return max(0.0, self._patience - (time.monotonic() - began))

    @property
    def patience(self) -> float:
        return self._patience

    def release_writer_lock(self) -> None:
        if self._writing:
            self._writing = False
            assert self._writers is not None
            self._writers.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.release_writer_lock()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.release_writer_lock()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.release_writer_lock()
