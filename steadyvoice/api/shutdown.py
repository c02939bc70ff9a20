"""Telling calls that wait (``POST /v1/audio/speech``) that the server is shutting down.

On SIGTERM uvicorn stops accepting connections, waits ``timeout_graceful_shutdown`` seconds for
open requests, then cancels them: a call still waiting for its job then dies with a
``CancelledError`` traceback and its client gets a cut connection. :class:`GracefulServer` tells
the app when the shutdown begins (:class:`Shutdown`, on ``app.state``), so a waiting call gives
up in time, with ``MARGIN_SECONDS`` to spare: it answers its audio if the job is done by then,
else ``503 shutting_down`` (the job goes on), and a stream that has started ends incomplete.
"""

from __future__ import annotations

import socket
import time

import uvicorn
from starlette.applications import Starlette

# Left of uvicorn's grace period when a waiting call gives up: time to send its answer.
MARGIN_SECONDS = 2.0


class Shutdown:
    """Whether the server is shutting down, and until when a call may still wait."""

    def __init__(self) -> None:
        self._begun = False
        self._until = float("inf")

    def begin(self, grace_seconds: float | None) -> None:
        """The server stops now; open requests are cut after ``grace_seconds`` (None: never)."""
        if self._begun:
            return
        self._begun = True
        if grace_seconds is not None:
            self._until = time.monotonic() + max(0.0, grace_seconds - MARGIN_SECONDS)

    @property
    def begun(self) -> bool:
        return self._begun

    def seconds_left(self) -> float:
        """How long a call may still wait (infinite unless a shutdown with a grace began)."""
        return max(0.0, self._until - time.monotonic())


def shutdown_of(app: Starlette) -> Shutdown:
    """The app's :class:`Shutdown`, made at first use."""
    found = getattr(app.state, "shutdown", None)
    if not isinstance(found, Shutdown):
        found = Shutdown()
        app.state.shutdown = found
    return found


class GracefulServer(uvicorn.Server):
    """uvicorn's server, telling the app (``config.app``) as soon as it begins to shut down."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        app = self.config.app
        if isinstance(app, Starlette):
            shutdown_of(app).begin(self.config.timeout_graceful_shutdown)
        await super().shutdown(sockets)
