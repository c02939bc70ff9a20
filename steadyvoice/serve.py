"""``steadyvoice serve``: the API and its supervised local workers in one process group."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any

from steadyvoice.settings import Settings, load_settings, prepare_data_dir


def _prepare_metrics_dir(settings: Settings) -> None:
    """Empty this instance's host-local multiprocess metrics dir; point it and its workers there.

    Must run before ``prometheus_client`` is imported: it picks its storage at import.
    """
    import os
    import shutil

    path = settings.resolved_metrics_dir.resolve()
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)  # inherited by the worker processes
    if "prometheus_client" in sys.modules:
        logging.getLogger("steadyvoice.cli").warning(
            "prometheus_client was imported before the metrics dir was set; "
            "this process's metrics will not be shared"
        )


def serve(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.workers is not None:
        overrides["workers"] = args.workers
    if args.no_workers:
        overrides["workers"] = 0
    api = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if api:
        overrides["api"] = api
    settings = load_settings(**overrides)
    prepare_data_dir(settings)
    _prepare_metrics_dir(settings)

    import uvicorn

    from steadyvoice.api.app import create_app
    from steadyvoice.jobs.reaper import release_gone_workers
    from steadyvoice.jobs.store import JobStore
    from steadyvoice.jobs.supervisor import Supervisor
    from steadyvoice.observability.logs import configure_logging

    configure_logging(settings.log_level, "api")
    store = JobStore.from_url(settings.resolved_database_url, settings.data_dir)
    store.migrate()
    # After a power cut, this host's dead workers' jobs run again now, not when leases expire.
    release_gone_workers(store, settings.jobs.max_attempts)
    supervisor = Supervisor(settings, store)
    supervisor.start()
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.api.host,
        port=settings.api.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        server_header=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.api.forwarded_allow_ips,
    )
    # uvicorn re-raises the signal that stopped it once it has shut down; with these
    # handlers in place that is a no-op, so the workers below still get a graceful stop.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    try:
        uvicorn.Server(config).run()
    finally:
        supervisor.stop()
    return 0
