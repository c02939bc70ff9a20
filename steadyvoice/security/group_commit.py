"""Calls from many threads at once handed to one function together: one transaction each time.

On SQLite every write takes the one database lock in turn, and each transaction costs its own
statements' setup and commit. When 48 calls arrive together, 48 small transactions in a row put
the 49th caller, another tenant's ``GET /v1/me``, behind all of them. A :class:`Combiner` lets
the first thread in write everything waiting (its own item and the others') in one go; the
items that arrive meanwhile wait for it and then go together in the next one. A lone item is
written at once. Each caller gets its own result back, or its own exception raised.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Slot(Generic[T, R]):
    item: T
    done: bool = False
    result: R | None = None
    error: BaseException | None = None


class Combiner(Generic[T, R]):
    """``submit(item)`` returns ``run_many(items)``'s result for ``item``.

    ``run_many`` gets the items of the calls waiting together, in arrival order, and returns
    one result per item, in the same order; a result that is an exception is raised in that
    item's caller. If ``run_many`` itself raises, every item of that call raises it.
    """

    def __init__(self, run_many: Callable[[list[T]], list[R | BaseException]]) -> None:
        self._run_many = run_many
        self._turn = threading.Condition()
        self._waiting: list[_Slot[T, R]] = []
        self._running = False

    def submit(self, item: T) -> R:
        slot: _Slot[T, R] = _Slot(item)
        with self._turn:
            self._waiting.append(slot)
            while self._running and not slot.done:
                self._turn.wait()
            if not slot.done:  # no one running: this thread runs everything waiting
                self._running = True
                batch, self._waiting = self._waiting, []
        if not slot.done:
            self._run(batch)
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def _run(self, batch: list[_Slot[T, R]]) -> None:
        try:
            try:
                results = self._run_many([slot.item for slot in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"{len(results)} results for {len(batch)} items")
            except BaseException as exc:  # noqa: BLE001 - raised in each caller's thread
                results = [exc] * len(batch)
            for slot, result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    slot.error = result
                else:
                    slot.result = result
        finally:
            with self._turn:
                for slot in batch:
                    slot.done = True
                self._running = False
                self._turn.notify_all()
