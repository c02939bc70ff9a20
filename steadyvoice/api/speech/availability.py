"""Whether a speech call can be answered at all, checked before its job is recorded.

A call waits for a worker to run its job: with no worker alive it would wait out
``speech.wait_seconds`` for nothing, so it is refused at once (``503 no_live_worker``). A worker
is alive while its heartbeat is recent (``jobs.worker_ready_seconds``, the window readiness
uses), whatever it is doing: loading its engine, standing by, busy. A server shutting down takes
no new call (``503 shutting_down``). Both refusals record nothing, and both come after the
request's own checks (a bad request is 422 either way); a repeat of an already recorded call
(its ``Idempotency-Key``) is answered regardless.
"""

from __future__ import annotations

from collections.abc import Callable

from steadyvoice.api.deps import Services
from steadyvoice.api.shutdown import Shutdown
from steadyvoice.api.speech.wait import SHUTDOWN_RETRY_SECONDS
from steadyvoice.errors import NoLiveWorker, ShuttingDown

# When a refused client may try again: a worker that starts registers at once.
NO_WORKER_RETRY_SECONDS = 5


def live_workers(services: Services) -> int:
    """Worker processes with a recent heartbeat, in any state."""
    return len(services.workers.live(services.settings.jobs.worker_ready_seconds))


def answerable(services: Services, shutdown: Shutdown) -> Callable[[], None]:
    """The check a new speech job must pass (``JobService.submit``'s ``precondition``)."""

    def check() -> None:
        if shutdown.begun:
            raise ShuttingDown(
                "the server is shutting down and takes no new speech call",
                retry_after=SHUTDOWN_RETRY_SECONDS,
            )
        if live_workers(services) == 0:
            window = services.settings.jobs.worker_ready_seconds
            raise NoLiveWorker(
                f"no worker is running (none sent a heartbeat in the last {window:g} s), so "
                "nothing would speak this; nothing was recorded. Start one (steadyvoice serve, "
                "or steadyvoice worker), or queue the text with POST /v1/jobs",
                retry_after=NO_WORKER_RETRY_SECONDS,
            )

    return check
