"""The CPUs this process may use, and host-wide core slots that share them between processes.

:func:`available_cpus` is what the ``auto`` settings are sized from: the CPUs the scheduler lets
this process run on (``sched_getaffinity``: ``taskset``, cpusets), capped by a cgroup CPU quota
(``docker --cpus``, Kubernetes limits), rounded up.

:class:`CoreSlots` lets a worker use cores that no other worker is using, without a coordinator:
one file per core in a host-local directory, a core is taken by holding an exclusive ``flock`` on
its file. The kernel drops the lock when the holder closes it or dies, so a SIGKILLed worker never
leaks a core. A thread that must run but finds no free core holds a shared lock on the ``demand``
file while it runs; threads that only help (:mod:`steadyvoice.engines.pieces`) see that and step
back at their next piece, so the machine is oversubscribed for one piece at most.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

_CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
_CGROUP_V1 = Path("/sys/fs/cgroup/cpu")


def available_cpus() -> int:
    """CPUs this process may run on, capped by a cgroup quota (rounded up); at least 1."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        count = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        count = min(count, math.ceil(quota))
    return max(1, count)


def cgroup_cpu_quota(v2: Path = _CGROUP_V2, v1: Path = _CGROUP_V1) -> float | None:
    """CPUs' worth of time the cgroup allows (quota / period), or ``None`` if unlimited."""
    try:
        quota, period = v2.read_text().split()[:2]
        if quota == "max":
            return None
        return int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((v1 / "cpu.cfs_quota_us").read_text())
        period_us = int((v1 / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def default_slots_dir() -> Path:
    """Host-local and per user: every steadyvoice process of this user on the host shares it."""
    return Path(tempfile.gettempdir()) / f"steadyvoice-cores-{os.getuid()}"


class CoreSlot:
    """One taken core; :meth:`release` (or process exit) gives it back."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops its flock
            self._fd = None


class CoreSlots:
    """``count`` cores shared by every process that opens the same ``directory``."""

    def __init__(self, count: int, directory: Path | None = None) -> None:
        self.count = max(1, count)
        self._dir = directory or default_slots_dir()

    def try_take(self) -> CoreSlot | None:
        """A free core, or ``None`` at once if all are taken."""
        for index in range(self.count):
            fd = self._open(f"core-{index}")
            if _lock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB):
                return CoreSlot(fd)
            os.close(fd)
        return None

    def wanted(self) -> bool:
        """Some thread on the host is running without a core and wants one."""
        fd = self._open("demand")
        try:
            return not _lock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def demand(self) -> Iterator[None]:
        """Say, for the block, that a thread runs here without a core (see :meth:`wanted`)."""
        fd = self._open("demand")
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # shared: waits at most for a probe's instant
            yield
        finally:
            os.close(fd)

    def _open(self, name: str) -> int:
        try:
            return os.open(self._dir / name, os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:  # made on first use, so building an engine touches no disk
            self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            return os.open(self._dir / name, os.O_RDWR | os.O_CREAT, 0o600)


def _lock(fd: int, flags: int) -> bool:
    try:
        fcntl.flock(fd, flags)
    except BlockingIOError:
        return False
    return True
