"""A cap on the audio one job may make, enforced while the engine makes it.

The job runner installs the cap for the job it runs (:func:`capped`); an engine reports each
piece of audio as it is made (:func:`spent`), and the piece that takes the job past its cap
raises :class:`~steadyvoice.errors.AudioTooLong`, so the job fails with ``audio_too_long``
instead of going on. :class:`~steadyvoice.engines.pieces.PieceRunner` carries the cap to the
threads that make a job's pieces (:func:`carried`); once it is spent, the pieces not yet begun
refuse at once, so at most the pieces already in progress are made past it. Outside a job
(warm-up, the CLI without a cap) there is no cap and :func:`spent` only counts nothing.

An engine that can tell a request's length cheaply, without its model, also implements
:class:`AudioEstimating`: the API refuses at submit a job estimated past the cap, and the
estimate is what a tenant's daily audio quota counts for a job until it is made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

from steadyvoice.errors import AudioTooLong

if TYPE_CHECKING:
    from steadyvoice.engines.base import FloatAudio, SynthesisRequest

T = TypeVar("T")
ADVICE = "split the text into smaller jobs"


@runtime_checkable
class AudioEstimating(Protocol):
    """An engine that estimates a request's audio length without its model (cheap, in the API).

    The estimate is about the least the request will make: a refusal at submit must be sure,
    and what it misses, the cap while synthesizing catches.
    """

    def estimate_seconds(self, request: SynthesisRequest) -> float: ...


class AudioBudget:
    """The audio one job has made so far, against its cap. Thread-safe (pieces in parallel)."""

    def __init__(self, limit_seconds: float) -> None:
        self.limit_seconds = limit_seconds
        self._made = 0.0
        self._lock = threading.Lock()

    @property
    def made_seconds(self) -> float:
        with self._lock:
            return self._made

    def spend(self, samples: int, rate: int) -> None:
        """Count ``samples`` at ``rate``; raise ``audio_too_long`` once past the cap."""
        with self._lock:
            self._made += samples / rate
            made = self._made
        refuse_over(made, self.limit_seconds)

    def check(self) -> None:
        """Raise ``audio_too_long`` if the cap is already passed (before making more)."""
        refuse_over(self.made_seconds, self.limit_seconds)


_budget: ContextVar[AudioBudget | None] = ContextVar("audio_budget", default=None)


@contextmanager
def capped(limit_seconds: float | None) -> Iterator[AudioBudget | None]:
    """Run the block under a cap of ``limit_seconds`` of audio (None or 0: no cap)."""
    budget = AudioBudget(limit_seconds) if limit_seconds else None
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


def spent(samples: FloatAudio, rate: int) -> FloatAudio:
    """Count a piece of audio just made toward the current job's cap; returns it unchanged."""
    budget = _budget.get()
    if budget is not None:
        budget.spend(len(samples), rate)
    return samples


def check_made(seconds: float) -> None:
    """Refuse ``seconds`` of audio made in all (a job's whole output, or what it streamed so
    far) over the current cap: the backstop for engines that do not report their pieces."""
    budget = _budget.get()
    if budget is not None:
        refuse_over(seconds, budget.limit_seconds)


def carried(work: Callable[[int], T]) -> Callable[[int], T]:
    """``work`` under the calling thread's cap, whichever thread runs it; each call first
    refuses if the cap is already spent."""
    budget = _budget.get()
    if budget is None:
        return work

    def run(index: int) -> T:
        budget.check()
        token = _budget.set(budget)
        try:
            return work(index)
        finally:
            _budget.reset(token)

    return run


def refuse_over(seconds: float, limit: float | None, estimated: bool = False) -> None:
    """Raise ``audio_too_long`` when ``seconds`` of audio is over ``limit`` (None or 0: none)."""
    if not limit or seconds <= limit:
        return
    what = (
        f"this text would make about {seconds:.0f} s of audio"
        if estimated
        else f"the job made more than {limit:g} s of audio"
    )
    raise AudioTooLong(
        f"{what}; the limit is {limit:g} s per job: {ADVICE}",
        seconds=round(seconds, 3),
        limit=limit,
        estimated=estimated,
    )
