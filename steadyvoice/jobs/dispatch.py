"""How workers learn there is work. The job logic does not depend on which dispatcher is used.

Embedded mode rings a *doorbell*: one Unix datagram socket per local worker in the run dir; a
worker waits on its socket between polls, so a new job starts at once instead of at the next poll.
Polling stays as the safety net, so a lost ring only costs ``poll_interval_seconds``. A Celery
dispatcher would implement the same ``Dispatcher`` protocol by sending a task message whose
handler claims the job through the same store and runner.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Protocol

_MAX_SOCKET_PATH = 100


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
        if not self._run_dir.is_dir():
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            for path in self._run_dir.glob("doorbell-*.sock"):
                try:
                    sock.sendto(b"1", str(path))
                except ConnectionRefusedError:
                    path.unlink(missing_ok=True)  # its worker is gone
                except OSError:
                    continue  # full or racing with a restart: polling covers it


class Doorbell:
    """The worker's end: wait until rung or until the timeout passes."""

    def __init__(self, run_dir: Path) -> None:
        self._path = run_dir / f"doorbell-{os.getpid()}.sock"
        self._sock: socket.socket | None = None
        if len(str(self._path.resolve())) > _MAX_SOCKET_PATH:
            return  # path too long for AF_UNIX: poll only
        run_dir.mkdir(parents=True, exist_ok=True)
        self._path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(self._path))
        self._sock = sock

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
