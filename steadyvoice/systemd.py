"""systemd's service notifications (``sd_notify(3)``): READY, STATUS, STOPPING and WATCHDOG.

Under a ``Type=notify`` unit systemd sets ``NOTIFY_SOCKET`` (a path, or ``@name`` for an
abstract socket) and, with ``WatchdogSec=``, ``WATCHDOG_USEC``. Each message is one datagram of
``KEY=value`` lines. Without ``NOTIFY_SOCKET`` (a terminal, a container) every call is a no-op.

Hand-written rather than a dependency: the protocol is one ``sendto``; the libsystemd binding
(``systemd-python``) needs a C build against libsystemd headers, and the pure-Python packages
wrap the same few lines without the abstract-socket and ``WATCHDOG_PID`` details.

``Notifier.from_environment`` removes the variables from the environment (as
``sd_notify(unset_environment=1)`` does): the worker processes a ``serve`` starts inherit its
environment and must not speak for the service.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, MutableMapping

log = logging.getLogger("steadyvoice.systemd")

VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class Notifier:
    """Sends notifications to the service manager, if there is one; never raises."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self._address = address
        # sd_watchdog_enabled(3): ping at half the interval systemd allows.
        self.watchdog_every = watchdog_usec / 2e6 if address and watchdog_usec else None
        self._status: str | None = None
        self._stopping = False  # after STOPPING=1 no later status may say otherwise
        self._lock = threading.Lock()  # the signal handler and two threads send

    @classmethod
    def from_environment(cls, environ: MutableMapping[str, str] | None = None) -> Notifier:
        """The notifier systemd configured for this process; the variables are removed."""
        env = os.environ if environ is None else environ
        address, usec, pid = (env.pop(name, None) for name in VARIABLES)
        if pid is not None and pid != str(os.getpid()):
            usec = None  # the watchdog is another process's (we were started by it)
        watchdog = int(usec) if usec and usec.isdigit() and int(usec) > 0 else None
        return cls(address or None, watchdog)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, *lines: str) -> bool:
        """One datagram of ``KEY=value`` lines; False if there is no manager or it failed."""
        if self._address is None:
            return False
        address = self._address
        if address.startswith("@"):  # abstract namespace: a leading NUL byte instead of '@'
            address = "\0" + address[1:]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto("\n".join(lines).encode(), address)
        except OSError as exc:  # the manager's socket is gone: nothing to tell, nothing to fix
            log.debug("sd_notify failed: %s", exc)
            return False
        return True

    def status(self, text: str) -> None:
        """``STATUS=text``, only when it changed (``systemctl status`` shows the last one)."""
        if self._update(text):
            self.send(f"STATUS={text}")

    def ready(self, text: str) -> None:
        if self._update(text, force=True):
            self.send("READY=1", f"STATUS={text}")

    def stopping(self, text: str = "stopping: finishing the current jobs") -> None:
        """``STOPPING=1`` the first time; later calls say how the stop goes on (STATUS=)."""
        with self._lock:
            first, self._stopping = not self._stopping, True
            if text == self._status:
                return
            self._status = text
        self.send(*(["STOPPING=1"] if first else []), f"STATUS={text}")

    def _update(self, text: str, *, force: bool = False) -> bool:
        with self._lock:
            if self._stopping or (text == self._status and not force):
                return False
            self._status = text
            return True

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")


class Watchdog:
    """Pings the watchdog from a loop that calls :meth:`turn`, while ``alive()`` also holds.

    :attr:`every` is a quarter of ``WATCHDOG_USEC``. The loop turns at least that often and a
    turn pings when ``every`` has passed since the last ping, so pings are between a quarter
    and a half of ``WATCHDOG_USEC`` apart (``sd_watchdog_enabled(3)`` asks for at most half).
    A loop that stops turning (hung) stops the pings: systemd kills and restarts the service.
    """

    def __init__(self, notifier: Notifier, alive: Callable[[], bool] = lambda: True) -> None:
        assert notifier.watchdog_every is not None
        self.every = notifier.watchdog_every / 2  # the loop's longest sleep
        self._notifier = notifier
        self._alive = alive
        self._last = float("-inf")

    @classmethod
    def of(cls, notifier: Notifier, alive: Callable[[], bool] = lambda: True) -> Watchdog | None:
        """A watchdog if systemd asked for one (``WatchdogSec=``), else None."""
        return None if notifier.watchdog_every is None else cls(notifier, alive)

    def turn(self) -> None:
        now = time.monotonic()
        if now - self._last >= self.every and self._alive():
            self._last = now
            self._notifier.watchdog()


class ReadinessReporter:
    """Tells systemd READY=1 the first time ``check()`` says ready, and STATUS= as it changes.

    ``check`` returns (ready, status text): every ``every`` seconds until ready, then every
    ``settled_every``. It runs in its own thread, never in the loop that pings the watchdog: a
    check that waits on a stuck database must not get the service killed (it recovers by
    itself when the database is back, which a restart would not hasten).
    """

    def __init__(
        self,
        notifier: Notifier,
        check: Callable[[], tuple[bool, str]],
        every: float = 1.0,
        settled_every: float = 5.0,
    ) -> None:
        self._notifier = notifier
        self._check = check
        self._every = every
        self._settled_every = settled_every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.announced = False

    def start(self) -> None:
        if not self._notifier.enabled:
            return
        self._thread = threading.Thread(target=self._loop, name="sd-notify", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                ready, text = self._check()
            except Exception:  # a failed check is reported; the loop goes on
                log.exception("readiness check for systemd failed")
                ready, text = False, "not ready: readiness check failed"
            if self._stop.is_set():
                return
            if ready and not self.announced:
                self.announced = True
                self._notifier.ready(text)
            else:
                self._notifier.status(text)
            self._stop.wait(self._settled_every if self.announced else self._every)
