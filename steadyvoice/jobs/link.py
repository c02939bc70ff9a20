"""The channel between the supervisor and one of its workers: a socket pair, one byte a message.

Worker to supervisor: ``LOADED`` (a spare has its engine loaded and waits), ``READY`` (the worker
serves: its liveness row says ``ready``), ``JOB`` (one job finished). Supervisor to worker:
``PROMOTE`` (a spare starts serving). End of file means the other side is gone: the supervisor
sees a worker's death the moment it happens, without polling, and a spare whose supervisor died
exits instead of waiting forever.

The worker's writes never block and never fail it: the reports are for the restart policy, and
a supervisor that is not reading (stopping, or dead) only loses them.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading

LOADED = b"L"
READY = b"R"
JOB = b"J"
PROMOTE = b"P"
_WAKE_EVERY = 0.5  # a spare looks at its stop flag this often while it waits


class WorkerLink:
    """The worker's end, from the file descriptor the supervisor passed (``--link FD``)."""

    def __init__(self, fd: int, standby: bool) -> None:
        self._sock = socket.socket(fileno=fd)
        self._sock.setblocking(False)
        self.standby = standby

    def send(self, message: bytes) -> None:
        # The supervisor is gone or not reading: this is a report, not a duty.
        with contextlib.suppress(OSError):
            self._sock.send(message)

    def wait_promoted(self, stop: threading.Event) -> bool:
        """A spare: report loaded, then wait for ``PROMOTE``; False on stop or supervisor gone."""
        self.send(LOADED)
        while not stop.is_set():
            readable, _, _ = select.select([self._sock], [], [], _WAKE_EVERY)
            if not readable:
                continue
            try:
                data = self._sock.recv(64)
            except BlockingIOError:
                continue
            except OSError:
                return False
            if not data:
                return False
            if PROMOTE in data:
                self.standby = False
                return True
        return False
