"""Which process a local pid is: enough to prove, from this host, that a worker is gone.

A pid alone proves nothing: pids are reused, and another pid namespace (a container) or another
boot of the machine has its own. A process key names one process for the life of the kernel:
``<boot id>/<pid namespace>/<start time>``, the start time in clock ticks after boot from
``/proc/<pid>/stat``. A worker records its key in its liveness row; a later ``serve`` on the same
host (same hostname, same boot, same pid namespace) can then tell for certain that the process
that held a job is gone (no such pid, a zombie, or a pid now used by a process started at
another time). Where ``/proc`` is missing (not Linux) there is no key and nothing is ever proven.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

_PROC = Path("/proc")


def _boot_id() -> str | None:
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text("ascii").strip() or None
    except OSError:
        return None


def _pid_namespace() -> str | None:
    try:
        return os.readlink(_PROC / "self/ns/pid")
    except OSError:
        return None


def _stat(pid: int) -> tuple[str, str] | None:
    """``(state, start time)`` of ``pid`` from ``/proc/<pid>/stat``; ``None`` if there is none."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text("ascii", errors="replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = raw.rpartition(")")[2].split()
    if len(fields) < 20:
        return None
    return fields[0], fields[19]  # field 3 (state) and field 22 (starttime)


def host_prefix() -> str | None:
    """``<boot id>/<pid namespace>`` of this process, or ``None`` without ``/proc``."""
    boot, namespace = _boot_id(), _pid_namespace()
    return f"{boot}/{namespace}" if boot and namespace else None


def process_key(pid: int) -> str | None:
    """The key of live process ``pid`` in this namespace, or ``None`` (gone, or no ``/proc``)."""
    prefix, stat = host_prefix(), _stat(pid)
    if prefix is None or stat is None or stat[0] in ("Z", "X"):
        return None
    return f"{prefix}/{stat[1]}"


def proven_gone(host: str, pid: int, key: str | None) -> bool:
    """True only if the process ``key`` (recorded as ``host:pid``) cannot be running any more.

    Proof needs the same hostname, boot and pid namespace as ours; then the pid must be free,
    a zombie (it can run no code), or taken by a process that started at another time.
    """
    if key is None or host != socket.gethostname():
        return False
    prefix = host_prefix()
    if prefix is None or key.rpartition("/")[0] != prefix:
        return False
    return process_key(pid) != key
