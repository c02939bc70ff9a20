"""prometheus-client's multiprocess files: the scrape's view of them, and compaction of the dead.

Under ``serve`` every process writes its own ``<type>_<pid>.db`` files to the metrics dir, and a
scrape merges them all. A recycled or crashed worker leaves its files behind, so without care the
dir (and each scrape's work) grows by one set per worker that ever lived. When the supervisor
has reaped a worker, :func:`compact` folds that pid's counter, histogram and summary files into
one ``<type>_archive.db`` per type (the merged values, so every total a scrape reports stays the
same) and deletes them; its live gauges are simply dropped (``mark_process_dead``). Files of
other gauge modes (``all``, ``mostrecent``, ...; steadyvoice has none) are left as they are.

Compaction replaces files a scrape reads, so the two exclude each other with ``flock`` on
``compact.lock`` in the dir: a scrape holds it shared (:class:`SharedFilesCollector`), a
compaction exclusive. Without it a scrape could read the new archive and the dead files both
(double counting) or miss a file deleted under it. A pid still alive is skipped: that number
now belongs to a new process, which may be writing the same file.
"""

from __future__ import annotations

import fcntl
import glob
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.metrics_core import Metric
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

LOCK_NAME = "compact.lock"
ARCHIVE = "archive"  # the "pid" part of an archive's file name (never a number)
CUMULATIVE_TYPES = ("counter", "histogram", "summary")
HEADER_BYTES = 8  # an mmap file starts with its used length and padding


@contextmanager
def _locked(path: Path, operation: int) -> Iterator[None]:
    with open(path / LOCK_NAME, "a+b") as lock:
        fcntl.flock(lock, operation)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class SharedFilesCollector(Collector):
    """``MultiProcessCollector`` that never reads the dir halfway through a compaction."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)

    def collect(self) -> Iterable[Metric]:
        with _locked(self._path, fcntl.LOCK_SH):
            files = [f for f in glob.glob(os.path.join(self._path, "*.db")) if _started(f)]
            merged: Iterable[Metric] = MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
            return list(merged)


def _started(file: str) -> bool:
    """False for a file a starting process has created but not yet sized (prometheus-client
    opens, then truncates to size): reading it would fail the whole scrape."""
    try:
        return os.path.getsize(file) >= HEADER_BYTES
    except FileNotFoundError:  # removed since the glob
        return False


@dataclass(frozen=True)
class Compacted:
    """What one compaction did: pids folded into the archives, files deleted, pids skipped."""

    pids: list[int]
    removed: int
    skipped: list[int]


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _write(target: Path, metrics: Iterable[Metric]) -> None:
    """Write merged (not accumulated) samples as an mmap file, under the keys writers use."""
    temporary = target.with_suffix(".tmp")
    temporary.unlink(missing_ok=True)
    out = MmapedDict(str(temporary))  # type: ignore[no-untyped-call]
    try:
        for metric in metrics:
            for sample in metric.samples:
                labels = sample.labels
                key = mmap_key(
                    metric.name,
                    sample.name,
                    list(labels),
                    list(labels.values()),
                    metric.documentation,
                )
                out.write_value(key, sample.value, 0.0)  # type: ignore[no-untyped-call]
    finally:
        out.close()  # type: ignore[no-untyped-call]
    os.replace(temporary, target)


def _fold(path: Path, typ: str, pids: list[int]) -> int:
    """Merge ``typ``'s files of ``pids`` into its archive; returns how many files were deleted."""
    dead = [path / f"{typ}_{pid}.db" for pid in pids]
    dead = [f for f in dead if f.exists()]
    if not dead:
        return 0
    archive = path / f"{typ}_{ARCHIVE}.db"
    sources = [str(f) for f in [archive, *dead] if _started(str(f))]
    if sources:
        merged = MultiProcessCollector.merge(sources, accumulate=False)  # type: ignore[no-untyped-call]
        _write(archive, merged)
    for f in dead:
        f.unlink()
    return len(dead)


def _drop_live_gauges(path: Path, pid: int) -> int:
    removed = 0
    for f in path.glob(f"gauge_live*_{pid}.db"):
        f.unlink(missing_ok=True)
        removed += 1
    return removed


def compact(path: str | Path, pids: Iterable[int]) -> Compacted:
    """Fold the files of these exited processes into the archives; skip any pid still alive."""
    path = Path(path)
    wanted = sorted(set(pids))
    skipped = [pid for pid in wanted if _alive(pid)]
    dead = [pid for pid in wanted if pid not in skipped]
    removed = 0
    if dead:
        with _locked(path, fcntl.LOCK_EX):
            for pid in dead:
                removed += _drop_live_gauges(path, pid)
            for typ in CUMULATIVE_TYPES:
                removed += _fold(path, typ, dead)
    return Compacted(pids=dead, removed=removed, skipped=skipped)
