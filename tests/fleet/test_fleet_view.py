"""One view of the fleet on PostgreSQL (issue 15, items 3-4): a ``serve`` with one local worker
and a standalone ``steadyvoice worker`` with its own data dir and metrics port.

Both poll only every 30 s, so a job that starts within a couple of seconds was rung by
PostgreSQL's NOTIFY. The standalone worker's port counts exactly the jobs it ran, the API's
``/metrics`` exactly the local worker's (no double counting), and ``GET /v1/workers``,
``steadyvoice workers`` and ``/readyz`` show both workers.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from processes import Process, Service, free_port, poll  # type: ignore[import-not-found]

from steadyvoice.cli import main
from steadyvoice.jobs.liveness import WorkerRegistry
from steadyvoice.jobs.store import JobStore
from steadyvoice.observability.worker_metrics import own_dir

pytestmark = pytest.mark.timeout(180)

PG_ADMIN_URL = os.environ.get(
    "STEADYVOICE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
)
POLL_SECONDS = "30"  # far longer than any wait below: a prompt start proves the NOTIFY
TEXT = "Four jobs at once keep both workers busy."  # about 0.4 s at 0.01 s a character


@dataclass
class Fleet:
    api: Service
    worker: Process
    store: JobStore
    url: str
    port: int  # the standalone worker's metrics port
    api_data: Path


def _env(data_dir: Path, metrics_dir: Path, **values: str) -> dict[str, str]:
    """A clean copy of our environment plus these STEADYVOICE_* values (as ``service_env``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYVOICE_")}
    env |= {"STEADYVOICE_DATA_DIR": str(data_dir), "STEADYVOICE_METRICS_DIR": str(metrics_dir)}
    env |= {"STEADYVOICE_WORKERS": "1", "STEADYVOICE_WORKER__SPARES": "0"}
    return env | {f"STEADYVOICE_{k.upper()}": v for k, v in values.items()}


def _database() -> str:
    name = f"sv_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"postgresql+psycopg://{base.split('://', 1)[1]}/{name}"


def _drop(url: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("fleet")
    url, port, api_port = _database(), free_port(), free_port()
    common = {
        "database_url": url,
        "engine": "fake",
        "fake__seconds_per_char": "0.01",
        "jobs__poll_interval_seconds": POLL_SECONDS,
        "jobs__heartbeat_seconds": "0.5",
    }
    api_env = _env(root / "api", root / "metrics", api__port=str(api_port), **common)
    api = Service(api_env, root / "serve.log", api_port, [])
    worker_env = _env(root / "remote", root / "unused", worker__metrics_port=str(port), **common)
    worker = Process(["worker"], worker_env, root / "worker.log")
    store = JobStore.from_url(url)
    try:
        api.start()
        api.wait_up()
        api.wait_ready()
        worker.start()
        registry = WorkerRegistry(store)
        poll(lambda: registry.serving(10) == 2, 90, f"both workers; log:\n{worker.log()}")
        yield Fleet(api, worker, store, url, port, root / "api")
    finally:
        worker.stop()
        api.stop()
        store.engine.dispose()
        _drop(url)
        shutil.rmtree(own_dir(port), ignore_errors=True)


def _succeeded(samples: str) -> float:
    """``steadyvoice_jobs_finished_total{status="succeeded"}`` summed over its other labels."""
    total = 0.0
    for line in samples.splitlines():
        if line.startswith("steadyvoice_jobs_finished_total{") and 'status="succeeded"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def _standalone_id(fleet: Fleet) -> str:
    rows = WorkerRegistry(fleet.store).live(10)
    return next(w.id for w in rows if w.metrics_port == fleet.port)


def test_a_job_starts_at_once_through_notify(fleet: Fleet) -> None:
    job = fleet.api.submit("Rung, not polled.")
    done = fleet.api.wait_job(job["id"], timeout=10)  # the next poll is 30 s away
    assert done["status"] == "succeeded"
    row = fleet.store.get(job["id"])
    assert row.started_at is not None
    assert (row.started_at - row.created_at).total_seconds() < 2.0


def test_the_standalone_workers_port_counts_exactly_its_jobs(fleet: Fleet) -> None:
    ids = [fleet.api.submit(TEXT)["id"] for _ in range(4)]
    for job_id in ids:
        assert fleet.api.wait_job(job_id, timeout=30)["status"] == "succeeded"
    standalone = _standalone_id(fleet)
    every = [j for j in fleet.store.list_jobs(limit=100) if j.status == "succeeded"]
    remote = sum(1 for j in every if j.worker_id == standalone)
    assert remote >= 1, "four jobs at once: the standalone worker took none"
    scraped = httpx.get(f"http://127.0.0.1:{fleet.port}/metrics", timeout=10).text
    assert _succeeded(scraped) == remote
    assert "steadyvoice_job_queue_wait_seconds_count" in scraped
    local = _succeeded(fleet.api.http.get("/metrics").text)
    assert local == len(every) - remote, "the API's /metrics counts only serve's own workers"


def test_the_fleet_list_and_readiness_show_both_workers(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = fleet.api.http.get("/v1/workers")
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["serving"] == 2
    ports = sorted((w["metrics_port"] or 0) for w in body["workers"])
    assert ports == [0, fleet.port]
    for w in body["workers"]:
        assert w["live"] and w["engine"] == "fake" and w["state"] in ("ready", "busy")
        assert w["host"] and w["heartbeat_age_seconds"] < 10 and w["recycles"] == 0
    assert fleet.api.http.get("/readyz").json()["workers"] == 2

    monkeypatch.setenv("STEADYVOICE_DATABASE_URL", fleet.url)
    monkeypatch.setenv("STEADYVOICE_DATA_DIR", str(fleet.api_data))
    assert main(["workers", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert {w["id"] for w in shown["workers"]} == {w["id"] for w in body["workers"]}
    assert main(["workers"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:5] == ["HOST", "PID", "ENGINE", "QUEUES", "STATE"]
    assert str(fleet.port) in table and "2 serving of 2 registered" in table
