"""The reverse doorbell: a worker rings the API processes on its host when a job has news."""

from __future__ import annotations

import socket
from pathlib import Path

import anyio
import pytest

from steadyvoice.jobs import dispatch
from steadyvoice.jobs.dispatch import ProgressBell, ProgressWatch

LONG = 30.0  # a ring ends the wait long before this; a missing one fails the test


def test_a_ring_wakes_the_callers_watching_that_job_only(tmp_path: Path) -> None:
    watch = ProgressWatch(tmp_path)
    watch.open()
    bell = ProgressBell(tmp_path)

    async def main() -> tuple[bool, bool, bool]:
        with watch.watch("job-1") as one, watch.watch("job-1") as also, watch.watch("job-2") as two:
            bell.notify("job-1")
            return await one.wait(LONG), await also.wait(LONG), await two.wait(0.05)

    try:
        assert anyio.run(main) == (True, True, False)
    finally:
        watch.close()
    assert not list(tmp_path.glob("progress-*.sock")), "close removes the socket"


def test_a_ring_during_a_read_is_kept_for_the_next_wait(tmp_path: Path) -> None:
    watch = ProgressWatch(tmp_path)
    watch.open()

    async def main() -> list[bool]:
        with watch.watch("job-1") as mine:
            ProgressBell(tmp_path).notify("job-1")  # lands while the caller reads the store
            await anyio.sleep(0)  # the event loop takes the datagram in
            return [await mine.wait(LONG), await mine.wait(0.05)]

    try:
        assert anyio.run(main) == [True, False], "kept once, then spent"
    finally:
        watch.close()


def test_without_a_socket_waits_are_plain_pauses(tmp_path: Path) -> None:
    unopened = ProgressWatch(tmp_path)
    too_long = ProgressWatch(tmp_path / ("d" * 120))
    too_long.open()  # AF_UNIX paths are short: polling only, no error

    async def main() -> list[bool]:
        results = []
        for watch in (unopened, too_long):
            with watch.watch("job-1") as mine:
                ProgressBell(tmp_path).notify("job-1")
                results.append(await mine.wait(0.05))
        return results

    assert anyio.run(main) == [False, False]
    too_long.close()


def test_a_bell_forgets_the_sockets_of_api_processes_that_are_gone(tmp_path: Path) -> None:
    stale = tmp_path / "progress-999999.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(stale))
    assert stale.exists()
    ProgressBell(tmp_path).notify("job-1")
    assert not stale.exists()
    ProgressBell(tmp_path / "missing").notify("job-1")  # no run dir yet: nothing to ring


def test_a_ring_before_anyone_watched_rings_the_next_watch_once(tmp_path: Path) -> None:
    """A worker quicker than the call's subscribe (the job recorded, then watched) is heard."""
    watch = ProgressWatch(tmp_path)
    watch.open()

    async def main() -> list[bool]:
        with watch.watch("job-0") as zero:
            ProgressBell(tmp_path).notify("job-1")  # nobody watches job-1 yet
            ProgressBell(tmp_path).notify("job-0")
            assert await zero.wait(LONG)  # rings are read in order: job-1's went unheard
        with watch.watch("job-1") as late:
            first = [await late.wait(LONG), await late.wait(0.05)]
        with watch.watch("job-1") as again:  # spent by the first watch
            return [*first, await again.wait(0.05)]

    try:
        assert anyio.run(main) == [True, False, False]
    finally:
        watch.close()


def test_unheard_rings_are_bounded_oldest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatch, "UNHEARD_RINGS", 2)
    watch = ProgressWatch(tmp_path)
    watch.open()
    bell = ProgressBell(tmp_path)

    async def main() -> list[bool]:
        with watch.watch("job-0") as zero:
            for job_id in ("job-1", "job-2", "job-3", "job-0"):
                bell.notify(job_id)
            assert await zero.wait(LONG)  # read in order: the three went unheard
        heard = []
        for job_id in ("job-1", "job-2", "job-3"):
            with watch.watch(job_id) as mine:
                heard.append(await mine.wait(0.05))
        return heard

    try:
        assert anyio.run(main) == [False, True, True], "the oldest is forgotten"
    finally:
        watch.close()
