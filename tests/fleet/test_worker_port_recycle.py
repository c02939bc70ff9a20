"""A standalone worker recycled by ``worker.max_jobs`` and started again on the same metrics
port (as systemd does) hands its counts to its successor: the port still shows the job the
first process ran and its recycle, and the fleet list shows the recycle."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from factories import new_job  # type: ignore[import-not-found]
from processes import Process, free_port, poll  # type: ignore[import-not-found]

from steadyvoice.jobs.fleet import members
from steadyvoice.jobs.store import JobStore
from steadyvoice.observability.worker_metrics import own_dir

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def port() -> Iterator[int]:
    number = free_port()
    yield number
    shutil.rmtree(own_dir(number), ignore_errors=True)


def _sample(text: str, name: str, label: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") and label in line
    )


def test_a_recycled_workers_successor_keeps_its_counts(
    port: int,
    tmp_path: Path,
    service_env: Callable[..., dict[str, str]],
    start_worker: Callable[[dict[str, str]], Process],
    store_factory: Callable[[str], JobStore],
) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    store = store_factory(url)
    env = service_env(
        database_url=url, engine="fake", worker__max_jobs="1", worker__metrics_port=str(port)
    )
    job, _ = store.create(new_job("The first process runs this one, then retires."))
    first = start_worker(env)
    assert first.proc is not None
    poll(lambda: first.proc.poll() is not None, 60, f"the recycle; log:\n{first.log()}")
    assert first.proc.returncode == 0 and store.get(job.id).status == "succeeded"

    second = start_worker(env)
    poll(lambda: [m.state for m in members(store, 10)] == ["ready"], 60, "the successor")
    scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    assert _sample(scraped, "steadyvoice_worker_recycles_total", 'reason="max_jobs"') == 1
    assert _sample(scraped, "steadyvoice_jobs_finished_total", 'status="succeeded"') == 1
    (member,) = members(store, 10)
    assert member.recycles == 1 and member.metrics_port == port and member.pid == second.proc.pid
