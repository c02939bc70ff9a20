"""A standalone ``steadyvoice worker`` on PostgreSQL rides out a database cut (issue 21, item 1).

The worker reaches the database through a TCP proxy the test cuts for about 6 s while a job
runs: the engine finishes during the cut, so recording the result fails, and is retried until
the database is back. The worker process stays up, the job succeeds on its first attempt with
its output recorded once, and the same worker takes the next job.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from factories import new_job  # type: ignore[import-not-found]
from pg_proxy import through  # type: ignore[import-not-found]
from processes import TERMINAL, Process, poll  # type: ignore[import-not-found]

from steadyvoice.jobs.chunks import ChunkStore
from steadyvoice.jobs.liveness import WorkerRegistry
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.store import JobStore
from steadyvoice.storage.local import sha256_file

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from tcp_proxy import TcpProxy  # type: ignore[import-not-found]

pytestmark = pytest.mark.timeout(180)

OUTAGE_SECONDS = 6.0
# About 1.2 s of fake synthesis: the job is surely still running when the cut begins.
TEXT = "This job finishes while the database is cut off."


@pytest.fixture
def store(pg_url: str, store_factory: Callable[[str], JobStore]) -> JobStore:
    """The test's own view of the database: straight to the server, never through the proxy."""
    return store_factory(pg_url)


def _ended(store: JobStore, job_id: str, log: Callable[[], str]) -> Job:
    def done() -> Job | None:
        job = store.get(job_id)
        return job if job.status in TERMINAL else None

    ended: Job = poll(done, 60, f"job {job_id} to end; worker log:\n{log()}")
    return ended


def _alive(worker: Process) -> bool:
    assert worker.proc is not None
    code = worker.proc.poll()
    assert code is None, f"the worker exited ({code}) in the outage; log:\n{worker.log()}"
    return True


def _events(log: str, name: str, job_id: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return [x for x in lines if x.get("event") == name and x.get("job_id") == job_id]


@pytest.fixture
def worker(
    store: JobStore,
    proxy: TcpProxy,
    pg_url: str,
    service_env: Callable[..., dict[str, str]],
    start_worker: Callable[[dict[str, str]], Process],
    tmp_path: Path,
) -> Process:
    """A ready standalone worker (fake engine, about 0.025 s a character, data under
    ``tmp_path / "data"``) that reaches PostgreSQL through ``proxy``."""
    env = service_env(
        data_dir=tmp_path / "data",
        database_url=through(proxy, pg_url),
        engine="fake",
        fake__seconds_per_char="0.025",
        jobs__lease_seconds="30",
        jobs__heartbeat_seconds="1",
    )
    worker = start_worker(env)
    registry = WorkerRegistry(store)
    poll(
        lambda: [w.state for w in registry.live(60)] == ["ready"],
        90,
        f"the worker ready; log:\n{worker.log()}",
    )
    return worker


def test_a_database_cut_around_completion_neither_ends_the_worker_nor_loses_the_result(
    store: JobStore, proxy: TcpProxy, worker: Process, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    job, _ = store.create(new_job(TEXT))
    poll(lambda: store.get(job.id).status == "running", 30, "the job running")

    cut_at = time.monotonic()
    proxy.cut()
    poll(
        lambda: _alive(worker) and '"job.store_retry"' in worker.log(),
        30,
        f"the worker retrying its result; log:\n{worker.log()}",
    )
    assert store.get(job.id).status == "running", "recorded through a cut proxy?"
    time.sleep(max(0.0, cut_at + OUTAGE_SECONDS - time.monotonic()))  # the outage's length
    assert _alive(worker)
    proxy.restore()

    done = _ended(store, job.id, worker.log)
    assert (done.status, done.attempts, done.error_code) == ("succeeded", 1, None)
    assert len(_events(worker.log(), "job.succeeded", job.id)) == 1, "recorded once"
    output = data / "outputs" / done.output_name
    assert sha256_file(output) == done.sha256
    assert sorted(p.name for p in (data / "outputs").rglob("*") if p.is_file()) == [output.name]

    after, _ = store.create(new_job("The next job, once the database is back."))
    taken = _ended(store, after.id, worker.log)
    assert (taken.status, taken.worker_id) == ("succeeded", done.worker_id)
    assert _alive(worker), "the worker is still serving"


def test_a_database_cut_during_synthesis_is_retried_not_an_engine_error(
    store: JobStore, proxy: TcpProxy, worker: Process
) -> None:
    """Issue 21 item 3 with real processes: a streamed job writes a chunk per sentence while it
    synthesizes; the database goes away between sentences and comes back. The chunk writes are
    retried, and the job succeeds on its first attempt instead of failing ``engine_error``."""
    sentences = " ".join(f"Sentence number {n} is read out in about one second." for n in range(5))
    params = {"seed": 42, "speed": 1.0, "format": "wav", "stream": True}
    job, _ = store.create(new_job(sentences, params=params))
    chunks = ChunkStore(store)
    poll(lambda: chunks.after(job.id, -1), 30, f"the first chunk; log:\n{worker.log()}")

    cut_at = time.monotonic()
    proxy.cut()
    poll(
        lambda: _alive(worker) and '"job.store_retry"' in worker.log(),
        30,
        f"the worker retrying a chunk write; log:\n{worker.log()}",
    )
    time.sleep(max(0.0, cut_at + 3.0 - time.monotonic()))  # the outage's length
    proxy.restore()

    done = _ended(store, job.id, worker.log)
    assert (done.status, done.attempts, done.error_code) == ("succeeded", 1, None), worker.log()
    assert len(_events(worker.log(), "job.succeeded", job.id)) == 1
    assert _alive(worker), "the worker is still serving"
