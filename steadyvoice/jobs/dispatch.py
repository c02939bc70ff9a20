"""How workers learn there is work, and how the API learns a job has news.

Embedded mode rings a *doorbell*: one Unix datagram socket per local worker in the run dir; a
worker waits on its socket between polls, so a new job starts at once instead of at the next poll.
Polling stays as the safety net, so a lost ring only costs ``poll_interval_seconds``. A Celery
dispatcher would implement the same ``Dispatcher`` protocol by sending a task message whose
handler claims the job through the same store and runner.

The same doorbell runs the other way for calls that wait on a job (``POST /v1/audio/speech``):
each API process listens on one socket (:class:`ProgressWatch`), and a worker rings every one of
them with the job id when it publishes a chunk or records the job's end
(:class:`ProgressBell`). The API then reads the store at once instead of at its next poll; its
polls stay as the safety net (a worker on another host rings nobody).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import anyio

_MAX_SOCKET_PATH = 100
_PROGRESS_GLOB = "progress-*.sock"
# Job ids rung while nobody watched them, kept so that a watch taken just after the ring
# (a call that recorded its job, then subscribes) starts rung instead of missing it.
UNHEARD_RINGS = 4096


class Dispatcher(Protocol):
    """Tells the worker side that a job is queued."""

    def notify(self, job_id: str) -> None: ...


class NullDispatcher:
    """Workers find work by polling alone."""

    def notify(self, job_id: str) -> None:
        return None


class DoorbellDispatcher:
    """Rings every local worker's doorbell socket."""

    def __init__(self, run_dir: Path) -> None:
        self._run_dir = run_dir

    def notify(self, job_id: str) -> None:
        _ring_all(self._run_dir, "doorbell-*.sock", b"1")


class ProgressBell:
    """A worker's end of the reverse doorbell: rings this host's API processes for a job."""

    def __init__(self, run_dir: Path) -> None:
        self._run_dir = run_dir

    def notify(self, job_id: str) -> None:
        _ring_all(self._run_dir, _PROGRESS_GLOB, job_id.encode())


def _ring_all(run_dir: Path, pattern: str, message: bytes) -> None:
    """Send ``message`` to every socket matching ``pattern``; never fails (polling covers)."""
    if not run_dir.is_dir():
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        for path in run_dir.glob(pattern):
            try:
                sock.sendto(message, str(path))
            except ConnectionRefusedError:
                path.unlink(missing_ok=True)  # its process is gone
            except OSError:
                continue  # full or racing with a restart: polling covers it


class Doorbell:
    """The worker's end: wait until rung or until the timeout passes."""

    def __init__(self, run_dir: Path) -> None:
        self._path = run_dir / f"doorbell-{os.getpid()}.sock"
        self._sock = _bound(self._path)

    def wait(self, timeout: float) -> bool:
        """True if rung; drains pending rings so one wake-up serves them all."""
        if self._sock is None:
            return False
        self._sock.settimeout(timeout)
        try:
            self._sock.recv(16)
        except TimeoutError:
            return False
        self._sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while self._sock.recv(16):
                pass
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._path.unlink(missing_ok=True)
            self._sock = None


class Watch:
    """One caller's interest in one job: ``wait`` returns early once a worker rang for it."""

    def __init__(self) -> None:
        self._rung = asyncio.Event()

    def ring(self) -> None:
        self._rung.set()

    async def wait(self, timeout: float) -> bool:
        """True if rung (since the last wait) within ``timeout`` seconds."""
        with anyio.move_on_after(timeout):
            await self._rung.wait()
        rung = self._rung.is_set()
        self._rung.clear()
        return rung


class ProgressWatch:
    """The API process's end of the reverse doorbell (see the module docstring).

    Subscribe with ``watch(job_id)`` *before* reading the job, then wait on the ``Watch``
    between reads: a ring that lands while the caller reads is kept for its next wait. A ring
    for a job nobody watched yet is remembered (the last ``UNHEARD_RINGS`` of them) and rings
    the next watch taken on that job at once, so a caller that has just recorded its job may
    wait before its first read without missing a worker that was quicker than its subscribe.
    Until ``open`` (and after ``close``) nothing rings, and waits last their whole timeout.
    """

    def __init__(self, run_dir: Path) -> None:
        # One per instance: two apps in one process (tests) must not take each other's socket.
        self._path = run_dir / f"progress-{os.getpid()}-{secrets.token_hex(4)}.sock"
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watches: dict[str, set[Watch]] = {}
        self._unheard: OrderedDict[str, None] = OrderedDict()

    def open(self) -> None:
        """Bind this process's socket (the app's lifespan does, once)."""
        if self._sock is None:
            self._sock = _bound(self._path)
        if self._sock is not None:
            self._sock.setblocking(False)

    @contextlib.contextmanager
    def watch(self, job_id: str) -> Iterator[Watch]:
        """Rings for ``job_id`` wake the yielded ``Watch`` until the block ends."""
        self._listen()
        watch = Watch()
        if job_id in self._unheard:
            del self._unheard[job_id]
            watch.ring()
        self._watches.setdefault(job_id, set()).add(watch)
        try:
            yield watch
        finally:
            watchers = self._watches.get(job_id, set())
            watchers.discard(watch)
            if not watchers:
                self._watches.pop(job_id, None)

    def _listen(self) -> None:
        """Read the socket from the running event loop (attached on first use)."""
        loop = asyncio.get_running_loop()
        if self._sock is None or self._loop is loop:
            return
        self._detach()
        loop.add_reader(self._sock.fileno(), self._on_readable)
        self._loop = loop

    def _on_readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(256)
            except OSError:  # drained (BlockingIOError), or closing
                return
            job_id = data.decode(errors="replace")
            watches = self._watches.get(job_id)
            if not watches:
                self._unheard[job_id] = None
                self._unheard.move_to_end(job_id)
                if len(self._unheard) > UNHEARD_RINGS:
                    self._unheard.popitem(last=False)
                continue
            for watch in watches:
                watch.ring()

    def _detach(self) -> None:
        if self._loop is not None and self._sock is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError, ValueError):
                self._loop.remove_reader(self._sock.fileno())
        self._loop = None

    def close(self) -> None:
        self._detach()
        if self._sock is not None:
            self._sock.close()
            self._path.unlink(missing_ok=True)
            self._sock = None


def _bound(path: Path) -> socket.socket | None:
    """A datagram socket bound at ``path``; None where the path is too long for AF_UNIX."""
    if len(str(path.resolve())) > _MAX_SOCKET_PATH:
        return None  # poll only
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    return sock
