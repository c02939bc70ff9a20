"""Worker recycling: real supervised worker processes retire after N jobs or past a memory limit,
and a fresh one takes over at once, without the crash backoff or a restart count."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from factories import new_job  # type: ignore[import-not-found]
from processes import poll  # type: ignore[import-not-found]

from steadyvoice.engines.registry import build_engine
from steadyvoice.jobs.store import JobStore
from steadyvoice.jobs.supervisor import Supervisor
from steadyvoice.jobs.worker import Worker
from steadyvoice.settings import Settings

TERMINAL = ("succeeded", "failed", "canceled")


@pytest.fixture
def supervise(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    settings_factory: Callable[..., Settings],
    store_factory: Callable[[str], JobStore],
) -> Iterator[Callable[..., tuple[Supervisor, JobStore]]]:
    """Start a Supervisor (in this process) whose workers read ``env`` as their settings."""
    started: list[Supervisor] = []

    def start(**env: str) -> tuple[Supervisor, JobStore]:
        values = {
            "DATA_DIR": str(tmp_path / "data"),
            "METRICS_DIR": str(tmp_path / "metrics"),
            "ENGINE": "fake",
            "WORKERS": "1",
            "JOBS__POLL_INTERVAL_SECONDS": "0.1",
            "JOBS__HEARTBEAT_SECONDS": "0.5",
        } | env
        for key, value in values.items():
            monkeypatch.setenv(f"STEADYVOICE_{key}", value)
        settings = settings_factory(engine=values["ENGINE"], workers=1)
        store = store_factory(settings.resolved_database_url)
        supervisor = Supervisor(settings, store, stop_grace=20)
        supervisor.start()
        started.append(supervisor)
        return supervisor, store

    yield start
    for supervisor in started:
        supervisor.stop()


def _finish(store: JobStore, texts: list[str], timeout: float = 90) -> list[tuple[str, str]]:
    """Queue jobs one after another; (status, worker_id) of each once it ended."""
    done = []
    for text in texts:
        job, _ = store.create(new_job(text))
        ended = poll(
            lambda job_id=job.id: (j := store.get(job_id)).status in TERMINAL and j,
            timeout,
            f"job {text!r}",
        )
        done.append((ended.status, str(ended.worker_id)))
    return done


def test_worker_is_replaced_after_max_jobs(
    supervise: Callable[..., tuple[Supervisor, JobStore]],
) -> None:
    supervisor, store = supervise(WORKER__MAX_JOBS="2")
    done = _finish(store, [f"Job number {i}." for i in range(5)])
    assert [status for status, _ in done] == ["succeeded"] * 5
    workers = [worker for _, worker in done]
    assert workers[0] == workers[1] != workers[2] == workers[3] != workers[4]
    slot = supervisor._slots[0]
    assert slot.recycles == 2 and slot.restarts == 0 and slot.backoff.failures == 0


def test_worker_is_replaced_past_its_memory_limit(
    supervise: Callable[..., tuple[Supervisor, JobStore]],
) -> None:
    supervisor, store = supervise(WORKER__MAX_MEMORY_MB="1")  # every process is bigger
    done = _finish(store, ["One.", "Two.", "Three."])
    assert [status for status, _ in done] == ["succeeded"] * 3
    assert len({worker for _, worker in done}) == 3
    assert supervisor._slots[0].restarts == 0


def test_in_process_worker_stops_itself_and_says_why(
    settings_factory: Callable[..., Settings], store_factory: Callable[[str], JobStore]
) -> None:
    settings = settings_factory(
        worker={"max_jobs": 2}, jobs={"poll_interval_seconds": 0.05, "heartbeat_seconds": 0.05}
    )
    store = store_factory(settings.resolved_database_url)
    jobs = [store.create(new_job(f"Job {i}."))[0] for i in range(3)]
    worker = Worker(settings, store, build_engine(settings), "host:9")
    thread = threading.Thread(target=worker.run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the worker did not stop after max_jobs"
    assert worker.recycled == "max_jobs"
    statuses = sorted(store.get(j.id).status for j in jobs)
    assert statuses == ["queued", "succeeded", "succeeded"], "the third job waits for a fresh one"
