"""A ``serve``-supervised worker's own ``/metrics`` port (``worker.metrics_port`` set on serve).

Without the setting (the default) ``serve``'s workers write into the API's multiprocess dir and
the API's ``/metrics`` serves them all, as ever. With it, each worker process gets one port of
``metrics_port`` … ``metrics_port + workers + spares - 1`` from its supervisor (the lowest no
living worker of this ``serve`` holds: :func:`port_range`; a promoted spare keeps its own), and
serves its own series there, from a subdir of the API's metrics dir named by the port
(``worker-port-<port>``). The API's ``/metrics`` reads only the top of that dir, so each
worker's series are served by exactly one endpoint: its port, never also the API's. A
successor on the same port (a recycle, a restart after a crash) folds its predecessors' files
into the archives at start and serves on from their totals.

A port this worker cannot take (another program holds it) is no reason to stop serving jobs:
the worker logs ``worker.metrics_port_unavailable``, writes into the API's dir instead (the
API's ``/metrics`` then counts it, so nothing goes uncounted) and shows no port in the fleet
list. The choice is made before ``prometheus_client`` is imported, which fixes the dir.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from steadyvoice.observability.worker_metrics import MULTIPROC_ENV, adopt, bind_port
from steadyvoice.settings import ConfigurationError

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

MAX_PORT = 65_535


def port_range(base: int, processes: int) -> range:
    """The ports a ``serve`` with ``processes`` worker slots (spares included) hands out."""
    ports = range(base, base + processes) if base else range(0)
    if ports and ports[-1] > MAX_PORT:
        raise ConfigurationError(
            f"worker.metrics_port={base} leaves no room for {processes} worker processes "
            f"(ports {base}-{ports[-1]}; the last port is {MAX_PORT})"
        )
    return ports


def port_dir(parent: Path, port: int) -> Path:
    """The subdir of ``serve``'s metrics dir for the worker serving on ``port``."""
    return parent / f"worker-port-{port}"


@dataclass(frozen=True)
class SlotPort:
    """The port a supervised worker was given, and whether it holds it."""

    port: int
    server: WSGIServer | None  # bound, serving nothing until ``serve_worker_metrics``
    error: str | None = None  # why it could not be bound

    @property
    def held(self) -> int | None:
        """The port it serves on (its fleet-list ``metrics_port``), or None."""
        return self.port if self.server is not None else None

    def report(self, log: logging.Logger, host: str) -> None:
        """Log a port that could not be taken (once logging is set up)."""
        if self.error is None:
            return
        from steadyvoice.observability.logs import event

        event(
            log,
            "worker.metrics_port_unavailable",
            level=logging.WARNING,
            host=host,
            port=self.port,
            error=self.error,
            served_by="api",
        )


def take(host: str, port: int) -> SlotPort:
    """Bind ``host:port`` and, once it is ours, move this process's metrics to the port's
    subdir. Must run before ``prometheus_client`` is imported."""
    try:
        server = bind_port(host, port)
    except OSError as exc:
        return SlotPort(port, None, exc.strerror or type(exc).__name__)
    parent = os.environ.get(MULTIPROC_ENV)
    if parent:
        path = port_dir(Path(parent), port)
        path.mkdir(mode=0o700, exist_ok=True)
        adopt(path)
    return SlotPort(port, server)
