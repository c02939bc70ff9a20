"""Whether a remote store answers, checked in the background and cached.

Readiness asks on every probe; the store is asked at most once per interval, by a one-shot
thread, so a probe never waits on a store that hangs (a paused server, a dead link) and a
busy probe schedule costs the store nothing. The object store (``storage_unreachable``) and the
Celery broker (``broker_unreachable``, steadyvoice.dispatch.broker_check) are checked this way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# The first answer is awaited this long; afterwards a probe reports the last one at once.
FIRST_WAIT_SECONDS = 2.0


class Reachability:
    """The last answer of ``check`` (None: reachable; else the reason), refreshed at most every
    ``interval`` seconds."""

    def __init__(
        self, check: Callable[[], str | None], interval: float, name: str = "storage-check"
    ) -> None:
        self._check = check
        self._interval = interval
        self._name = name
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._checked = float("-inf")
        self._running: threading.Thread | None = None
        self._first = threading.Event()

    def reason(self) -> str | None:
        with self._lock:
            due = time.monotonic() - self._checked >= self._interval
            if due and self._running is None:
                self._running = threading.Thread(target=self._refresh, name=self._name, daemon=True)
                self._running.start()
        self._first.wait(FIRST_WAIT_SECONDS)
        with self._lock:
            return self._reason

    def _refresh(self) -> None:
        try:
            reason = self._check()
        except Exception as exc:  # noqa: BLE001 - any failure to answer is "unreachable"
            reason = type(exc).__name__
        with self._lock:
            self._reason = reason
            self._checked = time.monotonic()
            self._running = None
        self._first.set()
