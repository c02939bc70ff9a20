"""One job's pieces made on several cores at once, handed back in order as each is ready.

Engines whose pieces are independent (piper: noise keyed by ``[seed, piece index]``, one
onnxruntime session whose ``run`` is thread-safe and releases the GIL) give the same samples
whichever thread makes a piece and in whichever order; only the wall time changes.

Cores are shared with every other worker on the host through :class:`steadyvoice.cpus.CoreSlots`:
a job's first lane always runs (on a free core, or announcing demand when there is none); every
other lane needs a free core and steps back between pieces as soon as a thread elsewhere wants
one. An idle machine gives one request all its cores; a full one runs each job on one.

Every piece starts with the job's checkpoint (:mod:`steadyvoice.engines.interrupt`), whichever
lane makes it: a job canceled meanwhile stops after the pieces in progress, and its remaining
pieces raise :class:`~steadyvoice.engines.interrupt.Abandoned` at once instead of running. The
job's audio cap (:mod:`steadyvoice.engines.budget`) reaches every lane the same way.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Generic, TypeVar

from steadyvoice.cpus import CoreSlot, CoreSlots
from steadyvoice.engines import budget, interrupt

T = TypeVar("T")


class PieceRunner:
    """Runs ``work(0) .. work(count - 1)`` on up to ``lanes`` threads; yields results in order."""

    def __init__(self, lanes: int, cores: CoreSlots) -> None:
        self.lanes = max(1, lanes)
        self._cores = cores
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def run(
        self, count: int, work: Callable[[int], T], sizes: Sequence[int] | None = None
    ) -> Generator[T, None, None]:
        """The results in index order; closing the generator early stops the unstarted pieces.

        Lanes start pieces in index order, so the first result comes soonest (streaming); with
        ``sizes``, largest first, so the last result comes soonest (the lanes finish together).
        When streaming, the other lanes start only once the first piece is made: a piece beside
        it on the other core slows it by about a tenth (shared caches and memory bandwidth), and
        the first piece is the time to first audio.
        """
        check = interrupt.current()  # this thread's job; the lanes are other threads
        if check is not None:
            work = _checked(work, check)
        work = budget.carried(work)  # and its audio cap
        if count <= 1 or self.lanes == 1:
            return self._inline(count, work)
        if sizes is None:
            return self._parallel(range(count), work, first_alone=True)
        return self._parallel(sorted(range(count), key=lambda i: -sizes[i]), work)

    def _inline(self, count: int, work: Callable[[int], T]) -> Generator[T, None, None]:
        with _holding(self._cores, self._cores.try_take()):
            for index in range(count):
                yield work(index)

    def _parallel(
        self, order: Sequence[int], work: Callable[[int], T], first_alone: bool = False
    ) -> Generator[T, None, None]:
        job = _Job(order, work, first_alone)
        pool = self._executor()
        pool.submit(job.lead, self._cores, self._cores.try_take())
        for _ in range(min(self.lanes, len(order)) - 1):
            slot = self._cores.try_take()
            if slot is None:
                break
            pool.submit(job.help, self._cores, slot)
        try:
            for future in job.futures:
                yield future.result()
        finally:
            job.cancel()

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.lanes, thread_name_prefix="piece")
            return self._pool


class _Job(Generic[T]):
    """The pieces of one run: lanes claim the next unclaimed piece of ``order`` until none is
    left; ``futures`` are in index order."""

    def __init__(
        self, order: Sequence[int], work: Callable[[int], T], first_alone: bool = False
    ) -> None:
        self.futures: list[Future[T]] = [Future() for _ in order]
        self._first_alone = first_alone
        self._order = order
        self._work = work
        self._next = 0
        self._lock = threading.Lock()

    def lead(self, cores: CoreSlots, slot: CoreSlot | None) -> None:
        with _holding(cores, slot):
            while (index := self._claim()) is not None:
                self._make(index)

    def help(self, cores: CoreSlots, slot: CoreSlot) -> None:
        with _holding(cores, slot):
            if self._first_alone:
                wait([self.futures[self._order[0]]])
            while not cores.wanted() and (index := self._claim()) is not None:
                self._make(index)

    def cancel(self) -> None:
        for future in self.futures:
            future.cancel()  # only pieces no lane has started

    def _claim(self) -> int | None:
        with self._lock:
            while self._next < len(self._order):
                index = self._order[self._next]
                self._next += 1
                if self.futures[index].set_running_or_notify_cancel():
                    return index
            return None

    def _make(self, index: int) -> None:
        future = self.futures[index]
        try:
            result = self._work(index)
        except Exception as exc:  # noqa: BLE001 - the consumer raises it, in order
            future.set_exception(exc)
        else:
            future.set_result(result)


def _checked(work: Callable[[int], T], check: interrupt.Check) -> Callable[[int], T]:
    def checked(index: int) -> T:
        check()
        return work(index)

    return checked


@contextlib.contextmanager
def _holding(cores: CoreSlots, slot: CoreSlot | None) -> Iterator[None]:
    """Keep ``slot`` for the block, then give it back; without one, announce demand instead."""
    if slot is None:
        with cores.demand():
            yield
        return
    try:
        yield
    finally:
        slot.release()
