"""``worker.max_age`` for a standalone worker (``steadyvoice worker``, e.g. a systemd unit per GPU).

A worker under ``serve`` is recycled by its supervisor, which sees every slot and retires one at
a time. A standalone worker has no such view: it recycles itself between jobs (its service
manager starts a fresh one), and keeps its peers from going together in two ways:

- its limit is ``max_age`` plus a random 0-10 %, so units started together drift apart;
- once due, it waits while another worker of its engine is loading or stopping (a peer
  being replaced right now), as the liveness rows in the shared database show. A recycled
  worker leaves its row behind, stopping, until its replacement registers (the service manager
  restarts it after ``RestartSec`` and an import: seconds in which no process of it runs), or
  for ``REPLACEMENT_SECONDS`` if none does (``WorkerRegistry.retire``/``clear_retired``);
- it looks at its peers and marks itself stopping in one transaction, serialized per engine,
  so two workers due at the same moment never both go.
"""

from __future__ import annotations

import random
import time

from steadyvoice.jobs.liveness import WorkerRegistry

SPREAD = 0.1  # of max_age, added at random to each worker's limit
# How long a recycled worker's row keeps its peers waiting if no replacement registers (the
# unit was stopped, the host went down): well past RestartSec plus an import.
REPLACEMENT_SECONDS = 120.0


class AgeLimit:
    """When a standalone worker has served long enough to be recycled."""

    def __init__(
        self, max_age: float, registry: WorkerRegistry, worker_id: str, live_window: float
    ) -> None:
        self._limit = max_age * (1 + random.uniform(0, SPREAD))
        self._registry = registry
        self._id = worker_id
        self._window = live_window
        self._since: float | None = None

    def serving(self) -> None:
        """The worker began serving now."""
        self._since = time.monotonic()

    def due(self, engine: str) -> bool:
        if not self._limit or self._since is None:
            return False
        if time.monotonic() - self._since < self._limit:
            return False
        # Loading: a live peer. Stopping: a live one, or a recycled one's row (no longer
        # beating) not yet cleared. Checked and taken in one transaction: see take_recycle_turn.
        return self._registry.take_recycle_turn(
            self._id, engine, self._window, max(self._window, REPLACEMENT_SECONDS)
        )
