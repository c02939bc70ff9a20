"""The combiner behind grouped writes: callers arriving together share one call, each gets
its own answer back."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from steadyvoice.security.group_commit import Combiner

DEADLINE = 30.0


def test_callers_arriving_while_one_runs_go_together_in_the_next_call() -> None:
    first_running, release = threading.Event(), threading.Event()
    calls: list[list[int]] = []

    def run_many(items: list[int]) -> list[int | BaseException]:
        calls.append(list(items))
        if items == [0]:
            first_running.set()
            assert release.wait(DEADLINE)
        return [item * 10 for item in items]

    combiner: Combiner[int, int] = Combiner(run_many)
    with ThreadPoolExecutor(max_workers=8) as pool:
        first = pool.submit(combiner.submit, 0)
        assert first_running.wait(DEADLINE)
        rest = [pool.submit(combiner.submit, i) for i in range(1, 8)]
        # The seven queue behind the running call: poll until all of them are waiting.
        waiting = threading.Event()

        def all_waiting() -> bool:
            with combiner._turn:
                return len(combiner._waiting) == 7

        deadline = threading.Timer(DEADLINE, waiting.set)
        deadline.start()
        while not all_waiting() and not waiting.is_set():
            waiting.wait(0.005)
        deadline.cancel()
        assert all_waiting()
        release.set()
        assert first.result(DEADLINE) == 0
        assert [f.result(DEADLINE) for f in rest] == [i * 10 for i in range(1, 8)]
    assert calls[0] == [0]
    assert sorted(calls[1]) == list(range(1, 8)) and len(calls) == 2  # one call for all seven


def test_an_item_whose_result_is_an_exception_raises_only_in_its_caller() -> None:
    def run_many(items: list[int]) -> list[int | BaseException]:
        return [ValueError(f"bad {i}") if i % 2 else i for i in items]

    combiner: Combiner[int, int] = Combiner(run_many)
    assert combiner.submit(2) == 2
    with pytest.raises(ValueError, match="bad 3"):
        combiner.submit(3)


def test_a_failed_call_fails_each_of_its_items_and_the_next_call_runs() -> None:
    fail = [True]

    def run_many(items: list[int]) -> list[int | BaseException]:
        if fail[0]:
            raise ConnectionError("database away")
        return list(items)

    combiner: Combiner[int, int] = Combiner(run_many)
    with pytest.raises(ConnectionError):
        combiner.submit(1)
    fail[0] = False
    assert combiner.submit(5) == 5  # the turn was handed back


def test_a_result_list_of_the_wrong_length_is_an_error_not_a_wrong_answer() -> None:
    combiner: Combiner[int, int] = Combiner(lambda items: [])
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        combiner.submit(1)
