"""File blocks that are in the page cache read on the event loop; the rest in a worker thread.

A download of a stored or converted file is read a block at a time. Each block used to be a
hop to a worker thread and back (a wake-up of the event loop, a wait for the GIL), which in a
burst of 48 downloads made hundreds of hops a second, all in front of every other caller's
answer. Most blocks of a file just written or just read are in the page cache, where a read
takes microseconds: ``preadv(..., RWF_NOWAIT)`` returns them at once, without a thread, and
refuses (``EAGAIN``) instead of waiting for the disk. Only what is not cached goes to a
thread, so a slow or network disk does not block the event loop. (Linux 5.9 and later refuse
without starting any I/O; older kernels may start readahead before they refuse.) A file
system that does not support the flag is remembered, and its files are read in threads.
"""

from __future__ import annotations

import errno
import os
from typing import BinaryIO

import anyio.to_thread

_NOWAIT = getattr(os, "RWF_NOWAIT", None)  # Linux 4.14 and later
_unsupported: set[int] = set()  # devices whose file system refused RWF_NOWAIT


class CacheFirstFile:
    """The subset of :class:`anyio.AsyncFile` that ``FileResponse`` uses: ``seek`` (from
    the start), ``read`` of up to ``size`` bytes (short only at the end of the file, as
    ``FileResponse`` takes a short block for the last) and ``aclose``."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self._fd = fh.fileno()
        stat = os.fstat(self._fd)
        self._size = stat.st_size  # the end, known without a read (no hop to learn it)
        self._device = stat.st_dev
        self._pos = 0

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> CacheFirstFile:
        return cls(await anyio.to_thread.run_sync(open, path, "rb"))

    async def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence != os.SEEK_SET:
            raise ValueError("CacheFirstFile seeks from the start only")
        self._pos = offset
        return offset

    async def read(self, size: int) -> bytes:
        wanted = max(0, min(size, self._size - self._pos))
        if not wanted:
            return b""
        data = self._cached(wanted)
        if len(data) < wanted:  # the rest is on the disk (or the file was cut short since)
            data += await anyio.to_thread.run_sync(
                os.pread, self._fd, wanted - len(data), self._pos + len(data)
            )
        self._pos += len(data)
        return data

    def _cached(self, size: int) -> bytes:
        if _NOWAIT is None or self._device in _unsupported:
            return b""
        buf = bytearray(size)
        try:
            got = os.preadv(self._fd, [buf], self._pos, _NOWAIT)
        except BlockingIOError:  # not in the page cache: the disk would be read
            return b""
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise
            _unsupported.add(self._device)  # this file system: threads from now on
            return b""
        return bytes(buf[:got]) if got < size else bytes(buf)

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._fh.close)
