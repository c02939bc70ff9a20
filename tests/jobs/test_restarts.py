"""The restart policy and the proof that a local worker process is gone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from steadyvoice.jobs import identity
from steadyvoice.jobs.restarts import MAX_DELAY, SETTLED_AFTER, Backoff, Life

KILLED = -9
NEVER_READY = Life(code=1, ready_for=None, jobs_done=0)
SERVED = Life(code=KILLED, ready_for=5.0, jobs_done=3)
IDLE = Life(code=KILLED, ready_for=5.0, jobs_done=0)


def test_a_worker_that_never_got_ready_backs_off_doubling_up_to_the_cap() -> None:
    slot = Backoff()
    delays = [slot.delay_after(NEVER_READY, now=float(i)) for i in range(9)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, MAX_DELAY, MAX_DELAY, MAX_DELAY]


def test_a_worker_that_served_work_is_replaced_at_once_whatever_came_before() -> None:
    slot = Backoff()
    for i in range(5):
        slot.delay_after(NEVER_READY, now=float(i))
    assert slot.delay_after(SERVED, now=5.0) == 0
    assert slot.failures == 0
    # Killed every second, but each one had served: never a backoff.
    assert [slot.delay_after(SERVED, now=6.0 + i) for i in range(10)] == [0.0] * 10
    # After that success, a crash at load starts the ladder from the bottom.
    assert slot.delay_after(NEVER_READY, now=20.0) == 0.5


def test_a_ready_worker_that_dies_again_soon_without_a_job_is_a_crash_loop() -> None:
    slot = Backoff()
    assert slot.delay_after(IDLE, now=0.0) == 0  # a first death of a ready worker: at once
    assert slot.delay_after(IDLE, now=10.0) == 0.5  # again, soon, still no job done
    assert slot.delay_after(IDLE, now=20.0) == 1.0
    # Long after the previous death it is a first death again.
    assert slot.delay_after(IDLE, now=20.0 + SETTLED_AFTER + 1) == 0
    # A worker ready for SETTLED_AFTER proved itself even without a job.
    slot.delay_after(IDLE, now=200.0)
    assert slot.delay_after(Life(KILLED, SETTLED_AFTER, 0), now=201.0) == 0


def test_a_clean_exit_is_never_delayed_and_clears_the_count() -> None:
    slot = Backoff()
    slot.delay_after(NEVER_READY, now=0.0)
    assert slot.delay_after(Life(code=0, ready_for=1.0, jobs_done=0), now=1.0) == 0
    assert slot.failures == 0


# --- proof that a process is gone -------------------------------------------------------------


def _child() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_a_live_process_is_not_gone_and_a_dead_one_is() -> None:
    host = socket.gethostname()
    proc = _child()
    try:
        key = identity.process_key(proc.pid)
        assert key is not None and key.startswith(f"{identity.host_prefix()}/")
        assert not identity.proven_gone(host, proc.pid, key)
        proc.kill()
        proc.wait()
        assert identity.proven_gone(host, proc.pid, key)
    finally:
        proc.kill()
        proc.wait()


def test_a_zombie_is_gone() -> None:
    proc = _child()
    key = identity.process_key(proc.pid)
    proc.kill()
    try:
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # dead, not yet reaped
        assert identity.proven_gone(socket.gethostname(), proc.pid, key)
    finally:
        proc.wait()


def test_a_reused_pid_is_gone_when_the_start_time_differs() -> None:
    me = os.getpid()
    key = identity.process_key(me)
    assert key is not None
    prefix, _, started = key.rpartition("/")
    assert identity.proven_gone(socket.gethostname(), me, f"{prefix}/{int(started) - 1}")


@pytest.mark.parametrize(
    "host, key",
    [
        ("some-other-host", "live"),  # another host: its processes are not ours to see
        ("here", None),  # no key recorded: no proof
        ("here", "another-boot/pid:[1]/100"),  # another boot or pid namespace
    ],
)
def test_nothing_is_proven_without_the_same_host_boot_and_namespace(
    host: str, key: str | None
) -> None:
    proc = _child()
    proc.kill()
    proc.wait()  # certainly gone, yet not provably so from these records
    name = socket.gethostname() if host == "here" else host
    recorded = f"{identity.host_prefix()}/1" if key == "live" else key
    assert not identity.proven_gone(name, proc.pid, recorded)
