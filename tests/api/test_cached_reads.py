"""Download blocks from the page cache on the event loop, the rest in a thread: same bytes,
and a thread only for what the cache does not hold."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from steadyvoice.api import cached_reads
from steadyvoice.api.cached_reads import CacheFirstFile

BLOCK = 64 * 1024


def _data(tmp_path: Path, size: int = 5 * BLOCK + 123) -> tuple[Path, bytes]:
    data = os.urandom(size)
    path = tmp_path / "audio.bin"
    path.write_bytes(data)
    return path, data


async def _read_all(path: Path, start: int = 0, block: int = BLOCK) -> bytes:
    """As FileResponse reads: blocks until a short one (the last)."""
    file = await CacheFirstFile.open(path)
    try:
        await file.seek(start)
        parts = []
        while True:
            chunk = await file.read(block)
            parts.append(chunk)
            if len(chunk) < block:
                assert not await file.read(block)  # and nothing after it
                return b"".join(parts)
    finally:
        await file.aclose()


@pytest.fixture
def disk_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The offsets read with ``os.pread`` in a worker thread (the cache missed)."""
    offsets: list[int] = []
    real = anyio.to_thread.run_sync

    async def counting(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if func is os.pread:
            offsets.append(args[2])
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(cached_reads.anyio.to_thread, "run_sync", counting)
    monkeypatch.setattr(cached_reads, "_unsupported", set())
    return offsets


def _fake_preadv(monkeypatch: pytest.MonkeyPatch, answer: Callable[[int, int], int | None]) -> None:
    """``os.preadv`` that gives ``answer(offset, size)`` bytes of the real read (None: raise
    EAGAIN, as for a block not in the cache)."""
    real = os.preadv

    def fake(fd: int, buffers: list[bytearray], offset: int, flags: int = 0) -> int:
        got = answer(offset, len(buffers[0]))
        if got is None:
            raise BlockingIOError(errno.EAGAIN, "not cached")
        part = bytearray(got)
        n = real(fd, [part], offset)
        buffers[0][:n] = part[:n]
        return n

    monkeypatch.setattr(os, "preadv", fake)


@pytest.mark.anyio
async def test_a_cached_file_is_read_without_a_thread(
    tmp_path: Path, disk_reads: list[int]
) -> None:
    path, data = _data(tmp_path)
    path.read_bytes()  # in the page cache
    assert await _read_all(path) == data
    assert await _read_all(path, start=BLOCK + 7) == data[BLOCK + 7 :]
    exact = tmp_path / "exact.bin"  # a whole number of blocks: the end needs no read either
    exact.write_bytes(data[: 3 * BLOCK])
    assert await _read_all(exact) == data[: 3 * BLOCK]
    assert disk_reads == []


@pytest.mark.anyio
async def test_blocks_the_cache_does_not_hold_are_read_in_a_thread(
    tmp_path: Path, disk_reads: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, data = _data(tmp_path)
    missing = {BLOCK, 3 * BLOCK}
    _fake_preadv(monkeypatch, lambda offset, size: None if offset in missing else size)
    assert await _read_all(path) == data
    assert sorted(disk_reads) == sorted(missing)


@pytest.mark.anyio
async def test_a_block_partly_cached_gets_the_rest_from_a_thread(
    tmp_path: Path, disk_reads: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, data = _data(tmp_path)
    _fake_preadv(monkeypatch, lambda offset, size: 1000 if offset == 2 * BLOCK else size)
    assert await _read_all(path) == data
    assert disk_reads == [2 * BLOCK + 1000]


@pytest.mark.anyio
async def test_a_file_system_without_nowait_reads_is_remembered(
    tmp_path: Path, disk_reads: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, data = _data(tmp_path)
    tries: list[int] = []

    def refuse(offset: int, size: int) -> int:
        tries.append(offset)
        raise OSError(errno.EOPNOTSUPP, "not supported")

    _fake_preadv(monkeypatch, refuse)
    assert await _read_all(path) == data
    assert tries == [0]  # asked once; then every block of that device went to a thread
    assert len(disk_reads) == 6 and cached_reads._unsupported == {path.stat().st_dev}


@pytest.mark.anyio
async def test_a_file_dropped_from_the_page_cache_reads_the_same(tmp_path: Path) -> None:
    path, data = _data(tmp_path)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # a no-op on tmpfs, and harmless
    finally:
        os.close(fd)
    assert await _read_all(path) == data


@pytest.mark.anyio
async def test_only_seeks_from_the_start(tmp_path: Path) -> None:
    path, _ = _data(tmp_path)
    file = await CacheFirstFile.open(path)
    try:
        with pytest.raises(ValueError, match="from the start"):
            await file.seek(0, os.SEEK_END)
    finally:
        await file.aclose()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
