"""Stopping synthesis between sentences once its job is no longer wanted.

The job runner installs a check for the job it runs (:func:`watching`); an engine calls
:func:`checkpoint` before each sentence, or hands :func:`current` to the threads that make its
pieces (:class:`steadyvoice.engines.pieces.PieceRunner` does). The check raises
:class:`Abandoned` once the job was canceled or its claim was lost; outside a job (warm-up, the
CLI) there is no check and :func:`checkpoint` does nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Check = Callable[[], None]

_check: ContextVar[Check | None] = ContextVar("synthesis_check", default=None)


class Abandoned(Exception):  # a stop signal, not an error: no Error in its name
    """The job being made is no longer this worker's: stop now and write nothing.

    ``reason``: ``canceled``, ``timeout`` (past its deadline) or ``lease_lost`` (taken back
    to be run again); ``status`` is the job's status when that was found.
    """

    def __init__(self, reason: str, status: str) -> None:
        super().__init__(f"job abandoned: {reason}")
        self.reason = reason
        self.status = status
        self.chunks: int | None = None  # how many chunks a streamed job had published


@contextmanager
def watching(check: Check) -> Iterator[None]:
    """Run the block with ``check`` as the current job's check (this thread and context)."""
    token = _check.set(check)
    try:
        yield
    finally:
        _check.reset(token)


def current() -> Check | None:
    """The current job's check, to call from other threads; None outside a job."""
    return _check.get()


def checkpoint() -> None:
    """Raise :class:`Abandoned` if the current job is no longer wanted; cheap, call it often."""
    check = _check.get()
    if check is not None:
        check()
