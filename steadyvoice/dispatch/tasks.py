"""The one Celery task, and the pool child's life: load the engine at start, leave at exit.

The worker is built inside the child (``worker_process_init``), never in the parent: a
database connection or an initialised GPU must not be shared across ``fork``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from typing import Any

from celery import Celery
from celery.exceptions import Reject
from celery.signals import worker_process_init, worker_process_shutdown

from steadyvoice.dispatch.celery_app import TASK
from steadyvoice.dispatch.consumer import BatchLaneFull, CeleryWorker, MemoryLimitBelowEngine
from steadyvoice.engines.registry import build_engine
from steadyvoice.jobs.liveness import local_worker_id
from steadyvoice.jobs.store import JobStore
from steadyvoice.observability.logs import event
from steadyvoice.settings import Settings

log = logging.getLogger("steadyvoice.worker")

EX_CONFIG = 78  # sysexits.h: a configuration error; systemd's RestartPreventExitStatus


class Refusal:
    """Why a child refused to serve (shared with the parent, which exits with it)."""

    def __init__(self) -> None:
        self._message = multiprocessing.Array("c", 1024)

    def set(self, message: str) -> None:
        self._message.value = message.encode()[:1023]  # type: ignore[attr-defined]

    @property
    def message(self) -> str:
        return bytes(self._message.value).decode(errors="replace")  # type: ignore[attr-defined]


def send_back(app: Celery, full: BatchLaneFull) -> str:
    """Put a held batch message back at the end of its queue: a fresh copy is sent before this
    one is acknowledged (for a moment there is one more, never one less). A broker that cannot
    take the copy gets the message back instead (``Reject``: Celery logs it as a warning)."""
    try:
        app.send_task(TASK, args=[full.job_id], queue=full.queue)
    except Exception as exc:  # kombu/redis raise many kinds; all mean "not sent"
        raise Reject(str(full), requeue=True) from exc
    return "requeued"


def install(app: Celery, settings: Settings, queues: list[str]) -> Refusal:
    """Register the task on ``app`` and the child start/stop hooks for ``settings``; the
    refusal a child may leave (then the whole worker stops: ``command.run_worker``)."""
    held: dict[str, CeleryWorker] = {}
    refusal = Refusal()
    # Children started so far, in memory the parent shares with every child it forks: each
    # replacement (a recycle, or a child that died) is one more (the fleet view's "recycles").
    started = multiprocessing.Value("i", 0)

    def start(**_: Any) -> None:
        store = JobStore.from_url(
            settings.resolved_database_url, settings.data_dir, settings.database
        )
        worker = CeleryWorker(settings, store, build_engine(settings), local_worker_id())
        held["worker"] = worker
        with started.get_lock():
            recycles = started.value
            started.value += 1
        try:
            worker.open(queues, recycles)
        except MemoryLimitBelowEngine as exc:
            # A replacement would do the same: stop the whole worker, with the reason.
            event(log, "worker.refused", level=logging.ERROR, reason=str(exc))
            refusal.set(str(exc))
            worker.close()
            os.kill(os.getppid(), signal.SIGTERM)
            os._exit(EX_CONFIG)

    def stop(**_: Any) -> None:
        worker = held.pop("worker", None)
        if worker is not None:
            worker.close()

    def run_job(job_id: str) -> str:
        """Run the job ``job_id`` names, unless it is no longer queued (then drop it); a
        batch message runs the batch item next in turn, or goes back to its queue while
        ``batch.max_running`` items run."""
        try:
            return "ran" if held["worker"].take(job_id) else "dropped"
        except BatchLaneFull as full:
            return send_back(app, full)

    worker_process_init.connect(start, weak=False)
    worker_process_shutdown.connect(stop, weak=False)
    app.task(name=TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)(run_job)
    return refusal
