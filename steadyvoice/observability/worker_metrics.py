"""A standalone worker's own ``/metrics`` port (``worker.metrics_port``).

``serve``'s local workers share the API's multiprocess dir, so the API's scrape sees them. A
``steadyvoice worker`` on another host (PostgreSQL or Celery topology) shares nothing with an
API, so it serves its job metrics itself, and Prometheus scrapes each worker.

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
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from steadyvoice.settings import ConfigurationError, Settings

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

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
    os.environ[MULTIPROC_ENV] = str(path)
    from steadyvoice.observability import metric_files  # imports prometheus_client: after

    pids = {int(m.group(1)) for f in path.glob("*.db") if (m := _PID_FILE.search(f.name))}
    metric_files.compact(path, pids)  # a live pid (another worker on this port?) is skipped
    return path


def serve_worker_metrics(settings: Settings) -> WSGIServer | None:
    """Serve this process's metrics on ``worker.metrics_host:metrics_port`` from a daemon
    thread (None when no port is set). A port in use raises ``OSError``."""
    port = settings.worker.metrics_port
    if not port:
        return None
    from prometheus_client import CollectorRegistry, start_http_server

    from steadyvoice.observability import metrics
    from steadyvoice.observability.metric_files import SharedFilesCollector

    registry = CollectorRegistry()
    path = metrics.multiprocess_dir()
    registry.register(SharedFilesCollector(path) if path else metrics.REGISTRY)
    metrics.set_process_memory("worker")
    server, _thread = start_http_server(port, settings.worker.metrics_host, registry)
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
