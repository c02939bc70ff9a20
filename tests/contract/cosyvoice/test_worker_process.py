"""A supervised worker process loads the cosyvoice engine on upstream's real code and serves jobs.

The worker is ``steadyvoice worker --supervised`` as ``serve`` starts it: it builds the engine
from settings, loads and warms up upstream, records its own engine version, runs a plain and a
streamed job (chunks published as made) and a canceled stream, and keeps serving.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cosyvoice_contract import MARKS, SPEAKER, skip_reason

if (_reason := skip_reason()) is not None:
    pytest.skip(_reason, allow_module_level=True)

import numpy as np
import soundfile as sf
from factories import new_job  # type: ignore[import-not-found]
from processes import poll  # type: ignore[import-not-found]

from steadyvoice.jobs.chunks import ChunkStore
from steadyvoice.jobs.store import JobStore
from steadyvoice.jobs.supervisor import Supervisor
from steadyvoice.settings import Settings
from steadyvoice.storage.local import LocalStorage

pytestmark = MARKS
SITE = Path(__file__).resolve().parent / "site"  # sitecustomize: torchaudio.load by soundfile
TERMINAL = ("succeeded", "failed", "canceled")
TEXT = "Good morning to everyone here. The train was on time today."


@pytest.fixture
def worker(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    repo: Path,
    model_dirs: Callable[[int], Path],
) -> Iterator[tuple[Settings, JobStore]]:
    env = {
        "STEADYVOICE_DATA_DIR": str(tmp_path / "data"),
        "STEADYVOICE_METRICS_DIR": str(tmp_path / "metrics"),
        "STEADYVOICE_ENGINE": "cosyvoice",
        "STEADYVOICE_WORKERS": "1",
        "STEADYVOICE_COSYVOICE__MODEL_DIR": str(model_dirs(2)),
        "STEADYVOICE_COSYVOICE__REPO_DIR": str(repo),
        "STEADYVOICE_COSYVOICE__SPEAKERS": json.dumps([SPEAKER]),
        "STEADYVOICE_JOBS__POLL_INTERVAL_SECONDS": "0.1",
        "STEADYVOICE_JOBS__HEARTBEAT_SECONDS": "0.5",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SITE), os.environ.get("PYTHONPATH")])),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    store = JobStore.from_url(settings.resolved_database_url, settings.data_dir)
    store.migrate()
    supervisor = Supervisor(settings, store, stop_grace=30)
    supervisor.start()
    try:
        yield settings, store
    finally:
        supervisor.stop()
        store.engine.dispose()


def _create(store: JobStore, text: str, stream: bool) -> str:
    params = {"seed": 42, "speed": 1.0, "format": "wav", "stream": stream}
    job, _ = store.create(
        new_job(text, voice=SPEAKER, engine="cosyvoice", engine_version="cosyvoice2", params=params)
    )
    return job.id


def _ended(store: JobStore, job_id: str) -> str:
    done = poll(lambda: (j := store.get(job_id)).status in TERMINAL and j, 600, job_id, every=0.1)
    return str(done.status)


def test_a_worker_serves_plain_streamed_and_canceled_jobs(
    worker: tuple[Settings, JobStore],
) -> None:
    settings, store = worker
    storage = LocalStorage(settings.outputs_dir)
    plain = _create(store, TEXT, stream=False)
    assert _ended(store, plain) == "succeeded", store.get(plain).error_message
    job = store.get(plain)
    assert str(job.engine_version).startswith("cosyvoice2+a1+")
    streamed = _create(store, TEXT, stream=True)
    assert _ended(store, streamed) == "succeeded", store.get(streamed).error_message
    chunks = ChunkStore(store).after(streamed, -1, limit=1000)
    assert chunks and all(c.sample_rate == 24_000 for c in chunks)
    long = _create(store, " ".join([TEXT] * 10), stream=True)
    poll(lambda: ChunkStore(store).after(long, -1), 600, "a first chunk", every=0.1)
    store.cancel(long)
    assert _ended(store, long) == "canceled"
    again = _create(store, TEXT, stream=False)
    assert _ended(store, again) == "succeeded", "the same worker serves on"
    assert store.get(again).worker_id == job.worker_id
    for job_id in (plain, again):
        name = store.get(job_id).output_name
        samples, rate = sf.read(io.BytesIO(storage.path(name).read_bytes()), dtype="float32")
        assert rate == 24_000 and samples.size and np.isfinite(samples).all()
