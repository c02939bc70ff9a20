"""The restart policy: tell a crash loop from a worker that was doing its job.

A worker that reported ready and was doing its job is replaced at once when it dies (the OOM
killer, a flaky GPU, an operator's kill). A slot backs off only when it looks like a crash loop:

- the worker died before it reported ready (a broken model file, a bad setting), or
- it was ready but died again soon (within ``SETTLED_AFTER`` of the slot's previous death)
  without finishing any job (a job or a device that kills every worker).

Each such death in a row doubles the wait before the next start, from ``BASE_DELAY`` up to
``MAX_DELAY``. A worker that finishes a job, or stays ready for ``SETTLED_AFTER``, clears the
count: one success puts the slot back to immediate restarts.
"""

from __future__ import annotations

from dataclasses import dataclass

BASE_DELAY = 0.5
MAX_DELAY = 30.0
SETTLED_AFTER = 60.0


@dataclass(frozen=True)
class Life:
    """What a worker process did before it exited."""

    code: int
    ready_for: float | None  # seconds from its ready report to its exit; None: never ready
    jobs_done: int


@dataclass
class Backoff:
    """One worker slot's deaths in a row, and the wait they earn."""

    failures: int = 0
    last_death: float | None = None  # monotonic time of the slot's previous unplanned death

    def delay_after(self, life: Life, now: float) -> float:
        """Seconds to wait before starting the replacement of a worker that lived ``life``."""
        if life.code == 0:  # it chose to stop (recycled, or told to): not a crash
            self.failures = 0
            return 0.0
        again = self.last_death is not None and now - self.last_death < SETTLED_AFTER
        self.last_death = now
        if not self._crash_loop(life, again):
            self.failures = 0
            return 0.0
        self.failures += 1
        return min(MAX_DELAY, BASE_DELAY * 2.0 ** (self.failures - 1))

    @staticmethod
    def _crash_loop(life: Life, again: bool) -> bool:
        if life.ready_for is None:
            return True
        settled = life.ready_for >= SETTLED_AFTER or life.jobs_done > 0
        return again and not settled
