"""``release_gone_workers``: only workers proven gone on this host lose their jobs early."""

from __future__ import annotations

import socket
import subprocess
import sys

from factories import new_job  # type: ignore[import-not-found]
from sqlalchemy import select

from steadyvoice.jobs.liveness import WorkerRegistry
from steadyvoice.jobs.models import Worker
from steadyvoice.jobs.reaper import release_gone_workers
from steadyvoice.jobs.store import JobStore

LEASE = 3600.0


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])


def _holding(store: JobStore, worker_id: str) -> str:
    """Register ``worker_id`` (recording its process key) and let it claim a new job."""
    WorkerRegistry(store).register(worker_id, "fake")
    job, _ = store.create(new_job(f"held by {worker_id}"))
    claim = store.claim(worker_id, LEASE)
    assert claim is not None and claim.job.id == job.id
    return job.id


def test_only_proven_dead_local_workers_lose_their_jobs(store: JobStore) -> None:
    host = socket.gethostname()
    dead, alive = _sleeper(), _sleeper()
    try:
        gone_job = _holding(store, f"{host}:{dead.pid}")
        live_job = _holding(store, f"{host}:{alive.pid}")
        remote_job = _holding(store, f"elsewhere-{host}:{dead.pid}")  # another host: no proof
        dead.kill()
        dead.wait()

        report = release_gone_workers(store, max_attempts=3)

        assert report.requeued == [gone_job] and report.lost == []
        assert store.get(gone_job).status == "queued" and store.get(gone_job).worker_id is None
        for job_id in (live_job, remote_job):
            assert store.get(job_id).status == "running" and store.get(job_id).attempts == 1
        with store.reading() as s:
            ids = set(s.scalars(select(Worker.id)))
        assert ids == {f"{host}:{alive.pid}", f"elsewhere-{host}:{dead.pid}"}
        # Nothing else is proven on a second start.
        assert release_gone_workers(store, max_attempts=3).requeued == []
    finally:
        for proc in (dead, alive):
            proc.kill()
            proc.wait()


def test_a_gone_worker_on_its_last_attempt_fails_its_job(store: JobStore) -> None:
    host = socket.gethostname()
    dead = _sleeper()
    job_id = _holding(store, f"{host}:{dead.pid}")
    dead.kill()
    dead.wait()
    report = release_gone_workers(store, max_attempts=1)
    assert report.lost == [job_id] and store.get(job_id).error_code == "worker_lost"
