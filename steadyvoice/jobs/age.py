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
- it says it is stopping at once (not a heartbeat later), so a peer due a moment after it
  sees it.
"""

from __future__ import annotations

import random
import time

from steadyvoice.jobs.liveness import LOADING, STOPPING, WorkerRegistry
from steadyvoice.jobs.models import Worker

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
        if any(self._peer(w, engine, LOADING) for w in self._registry.live(self._window)):
            return False
        # Stopping: a live one, or a recycled one's row (no longer beating) not yet cleared.
        rows = self._registry.live(max(self._window, REPLACEMENT_SECONDS))
        return not any(self._peer(w, engine, STOPPING) for w in rows)

    def _peer(self, worker: Worker, engine: str, state: str) -> bool:
        return worker.id != self._id and worker.engine == engine and worker.state == state
