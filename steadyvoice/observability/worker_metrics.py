"""A standalone worker's own ``/metrics`` port (``worker.metrics_port``).

A ``steadyvoice worker`` on another host (PostgreSQL or Celery topology) shares nothing with an
API, so it serves its job metrics itself, and Prometheus scrapes each worker. (``serve``'s
local workers: :mod:`.slot_metrics`.)

Its values live in a multiprocess dir of its own, host-local and named by the port
(``<tempdir>/steadyvoice-worker-metrics-<port>``), not in process memory: a worker recycled by
``worker.max_*`` (and restarted by systemd on the same port) hands its counts to its successor,
so the totals never step back and the recycle itself, counted just before the exit, is served
by the next process. Files of exited processes are folded into the archives at start
(``metric_files.compact``), as ``serve`` does for its workers.

``prometheus_client`` picks its storage when first imported, so :func:`use_own_dir` runs before
anything imports it (hence the imports inside the functions).
"""

from __future__ import annotations

import os
import re
import socket
import stat
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from steadyvoice.settings import ConfigurationError, Settings

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # as observability.metrics (not imported yet here)
_PID_FILE = re.compile(r"_(\d+)\.db$")


def own_dir(port: int) -> Path:
    """The host-local multiprocess dir of the worker serving on ``port``."""
    return Path(tempfile.gettempdir()) / f"steadyvoice-worker-metrics-{port}"


def check_private(path: Path) -> None:
    """Refuse a dir this user does not own alone: its name is predictable, so in a shared
    temp dir another user could have made it first (or a link to elsewhere) and would then
    read, or forge, this worker's metrics."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise ConfigurationError(f"{path}: the worker's metrics dir is not a directory")
    if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) != 0o700:
        raise ConfigurationError(
            f"{path}: the worker's metrics dir must belong to uid {os.getuid()} with mode "
            f"0700 (it has uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):04o}); "
            "remove it, or set TMPDIR to a private dir"
        )


def use_own_dir(settings: Settings) -> Path | None:
    """Point this process's metrics at its port's dir (none without ``worker.metrics_port``, or
    where a dir was already chosen); fold the files of earlier processes into the archives."""
    port = settings.worker.metrics_port
    if not port or os.environ.get(MULTIPROC_ENV):
        return None
    path = own_dir(port)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    check_private(path)
    adopt(path)
    return path


def adopt(path: Path) -> None:
    """Point this process's metrics at ``path`` and fold the files of the processes that wrote
    there before (and have exited) into its archives."""
    os.environ[MULTIPROC_ENV] = str(path)
    from steadyvoice.observability import metric_files  # imports prometheus_client: after

    pids = {int(m.group(1)) for f in path.glob("*.db") if (m := _PID_FILE.search(f.name))}
    metric_files.compact(path, pids)  # a live pid (another worker on this port?) is skipped


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a scrape in flight never holds up the worker's exit


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Scrapes are not logged (prometheus-client's server is silent too)."""


def _not_yet(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"metrics not served yet\n"]


def bind_port(host: str, port: int) -> WSGIServer:
    """Take ``host:port`` now (an ``OSError`` if it is in use), serving nothing until
    :func:`serve_worker_metrics`. Only the standard library: safe before ``prometheus_client``
    is imported, so a worker can choose its metrics dir after it knows the port is its own."""
    family = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)[0][0]
    server_class = type("_PortServer", (_Server,), {"address_family": family})
    return make_server(host, port, _not_yet, server_class, handler_class=_Quiet)


def serve_worker_metrics(settings: Settings, server: WSGIServer | None = None) -> WSGIServer | None:
    """Serve this process's metrics from a daemon thread, on ``server`` (bound already by
    :func:`bind_port`) or else on ``worker.metrics_host:metrics_port`` (None when no port is
    set). A port in use raises ``OSError``."""
    if server is None:
        if not settings.worker.metrics_port:
            return None
        server = bind_port(settings.worker.metrics_host, settings.worker.metrics_port)
    from prometheus_client import CollectorRegistry, make_wsgi_app

    from steadyvoice.observability import metrics
    from steadyvoice.observability.metric_files import SharedFilesCollector

    registry = CollectorRegistry()
    path = metrics.multiprocess_dir()
    registry.register(SharedFilesCollector(path) if path else metrics.REGISTRY)
    metrics.set_process_memory("worker")
    server.set_app(make_wsgi_app(registry))
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


def recycles_in(path: Path) -> int:
    """Recycles counted so far by the workers that served from ``path`` (this port)."""
    from steadyvoice.observability.metric_files import SharedFilesCollector

    return int(
        sum(
            sample.value
            for family in SharedFilesCollector(path).collect()
            for sample in family.samples
            if sample.name == "steadyvoice_worker_recycles_total"
        )
    )
