"""A background round run every few seconds until stopped (reaper, incident monitor, scans)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable


class Periodic:
    """Runs ``work`` in a daemon thread every ``interval`` seconds until :meth:`stop`.

    A round that raises is logged and the next one still runs. With ``at_once`` the first round
    runs at start; otherwise one interval after it.
    """

    def __init__(
        self,
        name: str,
        interval: float,
        work: Callable[[], object],
        log: logging.Logger,
        *,
        at_once: bool = False,
    ) -> None:
        self.name = name
        self._interval = interval
        self._work = work
        self._log = log
        self._at_once = at_once
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stop.set()
        if self._thread is not None and timeout:
            self._thread.join(timeout=timeout)

    def _loop(self) -> None:
        if not self._at_once and self._stop.wait(self._interval):
            return
        while True:
            try:
                self._work()
            except Exception:  # noqa: BLE001 - logged; the next round must still run
                self._log.exception("%s round failed", self.name)
            if self._stop.wait(self._interval):
                return
