"""Supervised worker processes running the cosyvoice engine (on the stand-in upstream).

Out of memory fails that job with ``engine_out_of_memory`` and the same worker takes the next
one; after ``worker.max_jobs`` a fresh process (a fresh model) takes over.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import new_job  # type: ignore[import-not-found]
from processes import poll  # type: ignore[import-not-found]

from steadyvoice.jobs.liveness import READY, WorkerRegistry
from steadyvoice.jobs.store import JobStore
from steadyvoice.jobs.supervisor import Supervisor
from steadyvoice.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "engines"))
from cosyvoice_standin import REPO, make_model_dir  # type: ignore[import-not-found]

SPEAKER = "speaker_a"
TERMINAL = ("succeeded", "failed", "canceled")


@pytest.fixture
def cosyvoice_supervisor(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[Supervisor, JobStore]]:
    model = make_model_dir(tmp_path / "model", 3, speakers=(SPEAKER,), faults={"oom_marker": "OOM"})
    env = {
        "DATA_DIR": str(tmp_path / "data"),
        "METRICS_DIR": str(tmp_path / "metrics"),
        "ENGINE": "cosyvoice",
        "COSYVOICE__MODEL_DIR": str(model),
        "COSYVOICE__REPO_DIR": str(REPO),
        "COSYVOICE__SPEAKERS": json.dumps([SPEAKER]),
        "WORKER__MAX_JOBS": "3",
        "JOBS__POLL_INTERVAL_SECONDS": "0.1",
        "JOBS__HEARTBEAT_SECONDS": "0.5",
    }
    for key, value in env.items():
        monkeypatch.setenv(f"STEADYVOICE_{key}", value)
    settings = Settings()
    store = JobStore.from_url(settings.resolved_database_url, settings.data_dir)
    store.migrate()
    supervisor = Supervisor(settings, store, stop_grace=20)
    supervisor.start()
    try:
        yield supervisor, store
    finally:
        supervisor.stop()
        store.engine.dispose()


def _run(store: JobStore, text: str) -> tuple[str, str | None, str, str | None]:
    """(status, error code, worker id, engine version) of a job once it ended."""
    job, _ = store.create(
        new_job(text, voice=SPEAKER, engine="cosyvoice", engine_version="cosyvoice3")
    )
    done = poll(
        lambda: (j := store.get(job.id)).status in TERMINAL and j, 120, f"job {text!r}", every=0.1
    )
    return done.status, done.error_code, str(done.worker_id), done.engine_version


def test_out_of_memory_fails_the_job_not_the_worker_and_recycling_renews_it(
    cosyvoice_supervisor: tuple[Supervisor, JobStore],
) -> None:
    supervisor, store = cosyvoice_supervisor
    first = _run(store, "Good morning to everyone here.")
    oom = _run(store, "This text always runs OOM on the card.")
    third = _run(store, "And the next job works again.")
    assert first[:2] == ("succeeded", None)
    assert oom[:2] == ("failed", "engine_out_of_memory")
    assert third[:2] == ("succeeded", None)
    assert first[2] == oom[2] == third[2], "the same worker process served all three"
    fourth = _run(store, "A fresh process with a fresh model.")
    assert fourth[:2] == ("succeeded", None) and fourth[2] != first[2]
    live = poll(
        lambda: [w for w in WorkerRegistry(store).live(10) if w.state == READY],
        60,
        "a ready worker",
    )
    assert len(live) == 1
    slot = supervisor._slots[0]
    assert slot.recycles == 1 and slot.restarts == 0
    assert str(third[3]).startswith("cosyvoice3+a1+"), "the worker records its own version"
