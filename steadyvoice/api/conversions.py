"""Converted downloads: a bounded pool of their own, one conversion per result, and a cache.

``GET /v1/jobs/{id}/audio?format=`` decodes and encodes a whole job, seconds of CPU for a long
one. So that downloads cannot hold up anything else, conversions run in a pool of processes of
their own, ``conversion.workers`` at once (by default the CPU count), at a lower CPU priority
(``nice`` +:data:`NICE`): not on anyio's default thread limiter, where authentication and cheap
reads run, and not under the API process's GIL. ``conversion.queue`` more may wait for a worker;
one more than that is refused at once with 503 ``busy`` and ``Retry-After``, so a crowd of
downloads costs a bounded amount of CPU and memory (each conversion streams in constant memory,
:mod:`steadyvoice.audio.conversion`).

A result is cached (:mod:`steadyvoice.storage.conversion_cache`), so a repeat is a file read.
Identical conversions asked for at once are made once: the others wait for that one, holding no
worker and no queue place, and are then served from the cache. With ``conversion.cache_bytes``
0 nothing is kept: each download converts into a temporary file deleted once it is sent.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import anyio
import anyio.to_thread

from steadyvoice.audio.conversion import conversion_tag, convert
from steadyvoice.audio.formats import EXTENSIONS
from steadyvoice.errors import Busy, OutputMissing, StorageError, StorageFull
from steadyvoice.settings import ConversionSettings
from steadyvoice.storage.conversion_cache import ConversionCache, cache_key
from steadyvoice.storage.local import sha256_file

# A conversion takes seconds; a refused client should come back after about one.
RETRY_SECONDS = 5
# Conversions yield the CPU to the API process (and the workers) when both want it.
NICE = 10

ExecutorFactory = Callable[[int], Executor]
# Makes a conversion's source file for its span (a download from the object store).
Fetch = Callable[[], AbstractAsyncContextManager[Path]]


@dataclass(frozen=True)
class Source:
    """A stored job output to convert: its path, format, rate, and recorded checksum."""

    job_id: str
    path: Path
    fmt: str
    sample_rate: int
    sha256: str | None


@dataclass(frozen=True)
class Converted:
    """A converted file ready to send. ``temporary``: not a cache entry; send it through
    :func:`open_unlinked`, so that it is gone from the disk however the download ends."""

    path: Path
    cache_hit: bool
    temporary: bool = False


def process_pool(workers: int) -> Executor:
    """``workers`` processes from the fork server (never a fork of the threaded API), niced."""
    context = multiprocessing.get_context("forkserver")
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_lower_priority)


def _lower_priority() -> None:
    os.nice(NICE)


class Conversions:
    """One API process's conversions: the pool, the in-flight table and the cache.

    ``executor`` makes the pool that runs them (processes; tests may pass threads).
    """

    def __init__(
        self,
        settings: ConversionSettings,
        cache_dir: Path,
        executor: ExecutorFactory = process_pool,
    ) -> None:
        self.workers = settings.workers
        self.queue = settings.queue
        self.cache = ConversionCache(cache_dir, settings.cache_bytes)
        self._limiter = anyio.CapacityLimiter(settings.workers)
        self._admitted = 0  # converting or waiting for a worker; touched only on the event loop
        self._making: dict[str, anyio.Event] = {}
        self._new_executor = executor
        self._executor: Executor | None = None  # started on the first conversion
        self._lock = threading.Lock()

    @property
    def running(self) -> int:
        return int(self._limiter.borrowed_tokens)

    @property
    def admitted(self) -> int:
        return self._admitted

    async def get(self, source: Source, fmt: str, fetch: Fetch | None = None) -> Converted:
        """``source`` in ``fmt``: from the cache, or converted now (``busy`` if the pool and its
        queue are full; ``output_missing`` if the file is not what the job recorded).

        ``fetch`` makes the source's file (an object store's download) only once the cache
        missed and the conversion was admitted: a hit or a ``busy`` costs no download. Its
        path then replaces ``source.path``.
        """
        name = self._name(source, fmt)
        while name is not None:
            hit = self.cache.get(name)
            if hit is not None:
                return Converted(hit, cache_hit=True)
            making = self._making.get(name)
            if making is None:
                break
            await making.wait()  # then it is in the cache, or it failed and this one tries
        self._admit()
        done = anyio.Event()
        if name is not None:
            self._making[name] = done
        try:
            if fetch is None:
                return await self._converted(source, fmt, name)
            async with fetch() as path:
                return await self._converted(replace(source, path=path), fmt, name)
        finally:
            self._admitted -= 1
            if name is not None:
                del self._making[name]
            done.set()

    async def _converted(self, source: Source, fmt: str, name: str | None) -> Converted:
        # The thread only waits for the pool process: it holds no GIL while it does.
        return await anyio.to_thread.run_sync(
            self._convert, source, fmt, name, limiter=self._limiter
        )

    def close(self) -> None:
        """Stop the pool's processes once their current conversions end."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def _admit(self) -> None:
        if self._admitted >= self.workers + self.queue:
            raise Busy(
                f"{self._admitted} conversions are running or waiting already; retry shortly, "
                "or download the job's own format",
                limit=self.workers + self.queue,
                retry_after=RETRY_SECONDS,
            )
        self._admitted += 1

    def forget(self, sha256: str | None, sample_rate: int | None, source_fmt: str) -> int:
        """Delete the cached conversions of one stored output (the retention purge deleted
        it: no copy may outlive it here); returns how many there were."""
        if sha256 is None or sample_rate is None:
            return 0  # never converted: a conversion needs both
        source = Source("", Path(), source_fmt, sample_rate, sha256)
        gone = 0
        for fmt in EXTENSIONS:
            name = self._name(source, fmt) if fmt != source_fmt else None
            if name is None:
                continue
            try:
                (self.cache.root / name).unlink()
            except FileNotFoundError:
                continue
            gone += 1
        return gone

    def _name(self, source: Source, fmt: str) -> str | None:
        if not self.cache.enabled or not source.sha256:
            return None
        tag = conversion_tag(source.fmt, fmt)
        return f"{cache_key(source.sha256, source.sample_rate, tag)}.{EXTENSIONS[fmt]}"

    def _pool(self) -> Executor:
        with self._lock:
            if self._executor is None:
                self._executor = self._new_executor(self.workers)
            return self._executor

    def _convert(self, source: Source, fmt: str, name: str | None) -> Converted:
        """On a limiter thread: run :func:`make` in the pool and wait for it."""
        pool = self._pool()
        root, keep = self.cache.root, self.cache.max_bytes
        try:
            kind, value = pool.submit(make, source, fmt, root, keep, name).result()
        except BrokenProcessPool:  # a pool process died (killed, out of memory): a fresh pool
            with self._lock:
                if self._executor is pool:
                    self._executor = None
            pool.shutdown(wait=False)
            raise Busy(
                "the conversion stopped unexpectedly; retry shortly",
                limit=self.workers + self.queue,
                retry_after=RETRY_SECONDS,
            ) from None
        if kind == "ok":
            return Converted(Path(value), cache_hit=False, temporary=name is None)
        if kind == "full":
            raise StorageFull(value)
        if kind == "storage":
            raise StorageError(value)
        raise OutputMissing(value, job_id=source.job_id)


def make(source: Source, fmt: str, root: Path, max_bytes: int, name: str | None) -> tuple[str, str]:
    """In a pool process: check the source's checksum, convert it into the cache (or into a
    temporary file when ``name`` is None). ``("ok", path)`` or an error's kind and message
    (plain values: they cross the process boundary)."""
    cache = ConversionCache(root, max_bytes)
    try:
        matches = not source.sha256 or sha256_file(source.path) == source.sha256
    except FileNotFoundError:  # removed since the route looked
        return "missing", "the output file is missing; run `steadyvoice verify`"
    if not matches:
        return "mismatch", (
            "the output file does not match its recorded checksum; run `steadyvoice verify`"
        )

    def write(fh: BinaryIO) -> None:
        convert(source.path, source.fmt, fmt, source.sample_rate, fh)

    try:
        path = cache.write_temporary(write) if name is None else cache.put(name, write)
    except ValueError:
        return "undecodable", "the output file cannot be decoded; run `steadyvoice verify`"
    except StorageFull as exc:
        return "full", str(exc)
    except FileNotFoundError:
        return "missing", "the output file is missing; run `steadyvoice verify`"
    except OSError as exc:  # the cache's disk: the stored output itself is fine
        return "storage", f"the conversion could not be written ({exc.strerror or exc}); retry"
    return "ok", str(path)


def open_unlinked(path: Path) -> BinaryIO:
    """A temporary conversion, opened and already unlinked: it is gone from the disk whatever
    becomes of the download (read through, or the client hangs up)."""
    fh = path.open("rb")
    path.unlink()
    return fh


async def read_then_close(fh: BinaryIO, block: int = 256 * 1024) -> AsyncIterator[bytes]:
    """The file's bytes in blocks, read off the event loop; closed however the send ends."""
    try:
        while data := await anyio.to_thread.run_sync(fh.read, block):
            yield data
    finally:
        fh.close()


def attachment(name: str, path_or_fh: Path | BinaryIO) -> dict[str, str]:
    """Download headers: the file name and, as a file response would send it, the length."""
    size = (
        path_or_fh.stat().st_size
        if isinstance(path_or_fh, Path)
        else os.fstat(path_or_fh.fileno()).st_size
    )
    return {"Content-Disposition": f'attachment; filename="{name}"', "Content-Length": str(size)}
