"""``steadyvoice worker --queues cosyvoice``: a Celery worker serving steadyvoice jobs.

A prefork pool of one child (see :mod:`.celery_app` for why not the solo pool): the parent holds
the broker connection, answers ``celery inspect`` and sends Flower its events; the child loads
the engine once and runs one job at a time until Celery recycles it (``worker.max_jobs``,
``worker.max_memory_mb``). Run one such worker per GPU (``CUDA_VISIBLE_DEVICES``) or per set of
CPU cores.
"""

from __future__ import annotations

import logging
import os

from steadyvoice.dispatch.celery_app import celery_app, consumed
from steadyvoice.dispatch.tasks import install
from steadyvoice.observability.logs import event
from steadyvoice.settings import ConfigurationError, Settings

log = logging.getLogger("steadyvoice.worker")

# Limits Celery has no setting for: refused rather than silently not applied.
_UNMAPPED = ("max_device_memory_mb", "max_age")


def parse_queues(values: list[str]) -> list[str]:
    """``["a,b", "c"]`` (the flag repeated or comma-separated) as ``["a", "b", "c"]``."""
    return [name for value in values for name in value.split(",") if name.strip()]


def run_worker(settings: Settings, queues: list[str]) -> int:
    """Run the Celery worker until it is stopped (SIGTERM: warm shutdown); its exit status."""
    if settings.dispatch.backend != "celery":
        raise ConfigurationError(
            "worker --queues needs dispatch.backend=celery and dispatch.broker_url"
        )
    unmapped = [name for name in _UNMAPPED if getattr(settings.worker, name)]
    if unmapped:
        raise ConfigurationError(
            f"worker.{', worker.'.join(unmapped)} cannot apply to a Celery worker "
            "(Celery recycles by worker.max_jobs and worker.max_memory_mb only)"
        )
    app = celery_app(settings)
    refusal = install(app, settings, queues)
    event(log, "worker.celery", queues=",".join(queues), engine=settings.engine)
    argv = [
        "worker",
        "--pool=prefork",
        "--concurrency=1",
        f"--queues={','.join(consumed(queues))}",
        # Unique per process: several workers may share a host.
        f"--hostname=steadyvoice-{settings.engine}-{os.getpid()}@%h",
        f"--loglevel={settings.log_level}",
        "--without-mingle",  # no start-up round trip to every other worker
        "--without-gossip",
    ]
    app.worker_main(argv)
    if refusal.message:
        raise ConfigurationError(refusal.message)
    return 0
