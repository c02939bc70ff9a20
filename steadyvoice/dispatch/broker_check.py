"""Whether the API reaches the Celery broker: readiness's ``broker_unreachable``.

A degraded state, not an unready one: while the broker is away the API still accepts jobs (the
outbox keeps each one, and the reaper sends it once the broker is back, steadyvoice.dispatch.
outbox), so ``/readyz`` keeps answering 200 and names the reason under ``degraded``. Taking
every API process out of its load balancer (the broker is shared, so all would fail together)
would refuse the very jobs the outbox exists to keep. A store, storage or disk failure, where a
job cannot be recorded or its audio written, is what answers 503.

The broker is pinged in the background, at most once per ``dispatch.broker_check_seconds``,
by a connection bounded by ``dispatch.publish_timeout_seconds`` (steadyvoice.storage.
reachability): a probe never waits on a dead or hung broker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from steadyvoice.settings import Settings
from steadyvoice.storage.reachability import Reachability

if TYPE_CHECKING:
    from celery import Celery


class BrokerCheck:
    """The last answer of a background ping of the broker (None: it answers)."""

    def __init__(self, app: Celery, interval: float, timeout: float) -> None:
        self._app = app
        self._timeout = timeout
        self._reachability = Reachability(self._ping, interval, name="broker-check")

    def unreachable(self) -> str | None:
        """Why the broker does not answer (an error's name), from the last check; None while
        it answers. Never waits on the broker longer than the first check's short wait."""
        return self._reachability.reason()

    def _ping(self) -> str | None:
        with self._app.connection_for_write() as conn:
            # One retry at once, each connect and read bounded by the transport's timeouts.
            conn.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0, timeout=self._timeout
            )
            client = getattr(conn.default_channel, "client", None)
            if client is not None and hasattr(client, "ping"):  # Redis: a real round trip
                client.ping()
        return None


def broker_check(settings: Settings) -> BrokerCheck | None:
    """The check for ``dispatch.backend=celery``; None for the embedded dispatch."""
    dispatch = settings.dispatch
    if dispatch.backend != "celery":
        return None
    from steadyvoice.dispatch.celery_app import celery_app  # celery loads only where it is used

    return BrokerCheck(
        celery_app(settings), dispatch.broker_check_seconds, dispatch.publish_timeout_seconds
    )
