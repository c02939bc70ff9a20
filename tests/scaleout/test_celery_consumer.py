"""The Celery pool child's worker in process (no broker): no stall while it waits for a
message, memory limits measured as Celery measures them, and a dead predecessor's job handed
back at start."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from factories import new_job  # type: ignore[import-not-found]

from steadyvoice.dispatch.consumer import CeleryWorker, MemoryLimitBelowEngine, peak_memory_bytes
from steadyvoice.engines.registry import build_engine
from steadyvoice.jobs.liveness import WorkerRegistry
from steadyvoice.jobs.store import JobStore
from steadyvoice.settings import Settings

MB = 1024 * 1024


@pytest.fixture
def celery_worker(
    store: JobStore, settings_factory: Callable[..., Settings]
) -> Iterator[Callable[..., CeleryWorker]]:
    made: list[CeleryWorker] = []

    def make(**overrides: Any) -> CeleryWorker:
        settings = settings_factory(
            dispatch={"backend": "celery", "broker_url": "memory://"}, **overrides
        )
        worker = CeleryWorker(settings, store, build_engine(settings), f"celery-{len(made)}")
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.close()


def test_an_idle_worker_waiting_for_a_message_is_not_stalled(
    store: JobStore, celery_worker: Callable[..., CeleryWorker]
) -> None:
    worker = celery_worker()
    worker.open(["fake"], 0)
    job, _ = store.create(new_job("Said once."))
    assert worker.take(job.id)
    assert store.get(job.id).status == "succeeded"
    # Waiting for the next message, however long, is no hang (was: worker.stalled ERROR).
    assert worker._progress.limit is None
    worker._progress._clock = lambda: 1e12  # type: ignore[method-assign]
    assert not worker._stalled()


def test_memory_is_the_peak_celery_compares(celery_worker: Callable[..., CeleryWorker]) -> None:
    below_peak = max(1, peak_memory_bytes() // MB - 1)
    with pytest.raises(MemoryLimitBelowEngine, match="peak"):
        celery_worker(worker={"max_memory_mb": below_peak}).open(["fake"], 0)

    worker = celery_worker(worker={"max_memory_mb": below_peak})
    worker._note_recycle()  # after a task: Celery retires the child, and so it is counted
    assert worker.recycled == "max_memory"
    roomy = celery_worker(worker={"max_memory_mb": peak_memory_bytes() // MB + 512})
    roomy._note_recycle()
    assert roomy.recycled is None


def test_a_new_child_hands_back_the_job_of_a_dead_one(
    store: JobStore, celery_worker: Callable[..., CeleryWorker]
) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    dead_id = f"{socket.gethostname()}:{dead.pid}"
    WorkerRegistry(store).register(dead_id, "fake")
    job, _ = store.create(new_job("Held by a child that was SIGKILLed."))
    assert store.claim_job(job.id, dead_id, 3600.0) is not None
    dead.kill()
    dead.wait()

    celery_worker().open(["fake"], 1)

    again = store.get(job.id)
    assert again.status == "queued" and again.worker_id is None
    assert again.published_at is None  # the reaper's outbox sends it at once
