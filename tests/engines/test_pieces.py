"""A job's pieces on several cores: results in order, helpers only on free cores, and helpers
that step back when another thread on the host wants a core."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import pytest

from steadyvoice.cpus import CoreSlots
from steadyvoice.engines.interrupt import Abandoned, watching
from steadyvoice.engines.pieces import PieceRunner

WAIT = 30.0  # generous: a loaded machine only makes these tests slower, never wrong


def test_results_come_back_in_order(tmp_path: Path) -> None:
    runner = PieceRunner(4, CoreSlots(4, tmp_path))
    assert list(runner.run(20, lambda i: i * i)) == [i * i for i in range(20)]
    assert list(runner.run(1, lambda i: "only")) == ["only"]
    assert list(runner.run(0, lambda i: i)) == []


def test_pieces_run_at_the_same_time_on_free_cores(tmp_path: Path) -> None:
    both = threading.Barrier(2, timeout=WAIT)  # passes only if two pieces run at once

    def work(i: int) -> str:
        both.wait()
        return threading.current_thread().name

    names = list(PieceRunner(2, CoreSlots(2, tmp_path)).run(2, work, sizes=[1, 1]))
    assert len(set(names)) == 2


def test_when_streaming_the_first_piece_runs_alone(tmp_path: Path) -> None:
    """The time to first audio is the first piece's: nothing runs beside it."""
    other_started = threading.Event()
    seen_beside_first: list[bool] = []

    def work(i: int) -> int:
        if i == 0:
            # Without the rule a helper lane starts piece 1 at once; give it time to show.
            seen_beside_first.append(other_started.wait(timeout=1.0))
        else:
            other_started.set()
        return i

    assert list(PieceRunner(2, CoreSlots(2, tmp_path)).run(12, work)) == list(range(12))
    assert seen_beside_first == [False]


def test_no_helper_without_a_free_core(tmp_path: Path) -> None:
    cores = CoreSlots(2, tmp_path)
    taken = [cores.try_take(), cores.try_take()]  # another worker is using both
    names = list(PieceRunner(2, cores).run(6, lambda i: threading.current_thread().name))
    assert len(set(names)) == 1
    for slot in taken:
        assert slot is not None
        slot.release()


def test_helpers_step_back_when_a_thread_elsewhere_wants_a_core(tmp_path: Path) -> None:
    cores = CoreSlots(2, tmp_path)
    elsewhere = CoreSlots(2, tmp_path)  # another process's view of the same cores
    both = threading.Barrier(2, timeout=WAIT)
    with contextlib.ExitStack() as stack:

        def work(i: int) -> str:
            if i == 1:
                stack.enter_context(elsewhere.demand())
            if i < 2:
                both.wait()
            return threading.current_thread().name

        names = list(PieceRunner(2, cores).run(8, work, sizes=[1] * 8))
    assert len(set(names[:2])) == 2
    assert len(set(names[2:])) == 1


def test_a_failed_piece_raises_in_order_and_stops_the_rest(tmp_path: Path) -> None:
    started: list[int] = []

    def work(i: int) -> int:
        started.append(i)
        if i == 3:
            raise ValueError("piece 3")
        return i

    made = PieceRunner(1, CoreSlots(1, tmp_path)).run(10, work)
    assert [next(made) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="piece 3"):
        next(made)


def test_closing_early_leaves_unstarted_pieces_unmade(tmp_path: Path) -> None:
    go = threading.Event()
    started: list[int] = []

    def work(i: int) -> int:
        started.append(i)
        if i > 0:
            go.wait(WAIT)
        return i

    made = PieceRunner(2, CoreSlots(2, tmp_path)).run(50, work)
    assert next(made) == 0
    made.close()
    go.set()
    assert len(started) <= 3  # piece 0, and what the two lanes had begun


def test_with_sizes_the_largest_start_first_and_results_stay_in_order(tmp_path: Path) -> None:
    cores = CoreSlots(2, tmp_path)
    taken = [cores.try_take(), cores.try_take()]  # no helper: one lane, so the order is visible
    started: list[int] = []

    def work(i: int) -> int:
        started.append(i)
        return i

    sizes = [5, 40, 10, 40, 1]
    assert list(PieceRunner(2, cores).run(5, work, sizes)) == [0, 1, 2, 3, 4]
    assert started == [1, 3, 2, 0, 4]
    started.clear()
    assert list(PieceRunner(2, cores).run(5, work)) == [0, 1, 2, 3, 4]
    assert started == [0, 1, 2, 3, 4]
    for slot in taken:
        assert slot is not None
        slot.release()


@pytest.mark.parametrize(
    ("lanes", "sizes"),
    [(1, None), (2, None), (2, [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8])],
    ids=["one-lane", "streamed", "largest-first"],
)
def test_an_abandoned_job_starts_no_more_pieces(
    tmp_path: Path, lanes: int, sizes: list[int] | None
) -> None:
    """The job's checkpoint runs before every piece, in whichever lane: once it says stop, the
    pieces in progress finish and every other one raises instead of running."""
    gone = threading.Event()
    started: list[int] = []

    def check() -> None:
        if gone.is_set():
            raise Abandoned("canceled", "canceled")

    def work(i: int) -> int:
        started.append(i)
        if len(started) == 3:
            gone.set()
        return i

    runner = PieceRunner(lanes, CoreSlots(lanes, tmp_path))
    with watching(check), pytest.raises(Abandoned):
        list(runner.run(12, work, sizes))
    assert 3 <= len(started) <= 2 + lanes, started  # the third, and what the lanes had begun
    # The runner is fine for the next job, which has no stop in it.
    assert list(runner.run(4, lambda i: i, sizes and sizes[:4])) == [0, 1, 2, 3]
