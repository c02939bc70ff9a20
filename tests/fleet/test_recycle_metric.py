"""``steadyvoice_worker_recycles_total`` counts a worker retired by ``worker.max_jobs``."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from factories import new_job  # type: ignore[import-not-found]

from steadyvoice.engines.registry import build_engine
from steadyvoice.jobs.store import JobStore
from steadyvoice.jobs.worker import Worker
from steadyvoice.observability import metrics
from steadyvoice.settings import Settings

pytestmark = pytest.mark.timeout(60)


def _recycles(reason: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "steadyvoice_worker_recycles_total", {"reason": reason}
    )
    return value or 0.0


def test_a_max_jobs_recycle_is_counted(
    settings_factory: Callable[..., Settings], store_factory: Callable[[str], JobStore]
) -> None:
    settings = settings_factory(
        worker={"max_jobs": 1}, jobs={"poll_interval_seconds": 0.05, "heartbeat_seconds": 0.05}
    )
    store = store_factory(settings.resolved_database_url)
    store.create(new_job("The only job this worker takes."))
    before, memory_before = _recycles("max_jobs"), _recycles("max_memory")
    worker = Worker(settings, store, build_engine(settings), "host:9")
    thread = threading.Thread(target=worker.run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the worker did not stop after max_jobs"
    assert worker.recycled == "max_jobs"
    assert _recycles("max_jobs") == before + 1
    assert _recycles("max_memory") == memory_before
