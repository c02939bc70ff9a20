"""Worker ids are unique per process: containers that share a hostname and number their pids
from 1 never take each other's row or jobs."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from factories import new_job  # type: ignore[import-not-found]
from processes import ServiceFactory, poll  # type: ignore[import-not-found]

from steadyvoice.jobs.liveness import (
    READY,
    WorkerRegistry,
    local_worker_id,
    parse_worker_id,
)
from steadyvoice.jobs.reaper import release_gone_workers
from steadyvoice.jobs.store import JobStore

LEASE = 30.0


@pytest.fixture
def container_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process looks like pid 1 of a container named ``app``, as every replica does."""
    monkeypatch.setattr(socket, "gethostname", lambda: "app")
    monkeypatch.setattr(os, "getpid", lambda: 1)


@pytest.mark.usefixtures("container_one")
def test_two_workers_with_one_hostname_and_pid_get_their_own_ids_and_rows(
    store: JobStore,
) -> None:
    first, second = local_worker_id(), local_worker_id()  # one per process
    assert first != second
    for worker_id in (first, second):
        assert re.fullmatch(r"app:1:[0-9a-f]{8}", worker_id)
        assert parse_worker_id(worker_id) == ("app", 1)
    registry = WorkerRegistry(store)
    registry.register(first, "fake")
    registry.beat(first, READY, None, 3)
    registry.register(second, "fake")  # before: replaced the first one's row
    rows = {w.id: w for w in registry.live(60)}
    assert set(rows) == {first, second}
    assert rows[first].jobs_done == 3 and rows[first].state == READY


@pytest.mark.usefixtures("container_one")
def test_releasing_one_workers_jobs_leaves_its_namesakes_alone(store: JobStore) -> None:
    first, second = local_worker_id(), local_worker_id()
    held = {}
    for worker_id in (first, second):
        store.create(new_job(f"held by {worker_id}"))
        claim = store.claim(worker_id, LEASE)
        assert claim is not None
        held[worker_id] = claim.job.id
    # A supervisor saw its own child ``first`` die: only that child's job goes back.
    report = store.release_worker(first, max_attempts=3)
    assert report.requeued == [held[first]]
    assert store.get(held[second]).status == "running"
    assert store.get(held[second]).worker_id == second


def test_the_power_cut_reaper_reads_new_and_old_ids(store: JobStore) -> None:
    """A dead local worker is proven gone by its row's host and pid, whichever id form it has."""
    host = socket.gethostname()
    registry = WorkerRegistry(store)
    for worker_id in (local_worker_id(os.getpid()), f"{host}:{os.getpid()}"):
        registry.register(worker_id, "fake")
    rows = registry.live(60)
    assert {(w.host, w.pid) for w in rows} == {(host, os.getpid())}
    assert all(w.process is not None for w in rows)  # the process key is recorded
    assert release_gone_workers(store, 3).requeued == []  # this process is alive
    assert len(registry.live(60)) == 2


@pytest.mark.parametrize(
    ("worker_id", "parsed"),
    [
        ("vm:4121:9f3c01ab", ("vm", 4121)),
        ("vm:4121", ("vm", 4121)),
        ("vm", ("", 0)),
        ("vm:x:9f3c01ab", ("vm:x", 0)),
    ],
)
def test_parse_worker_id(worker_id: str, parsed: tuple[str, int]) -> None:
    assert parse_worker_id(worker_id) == parsed


def _events(log: str, name: str) -> list[dict[str, Any]]:
    lines = (json.loads(line) for line in log.splitlines() if f'"{name}"' in line)
    return [e for e in lines if e.get("event") == name]


def test_a_supervisor_requeues_its_dead_workers_job_by_the_workers_own_id(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    # A lease far longer than the test: only the supervisor's release can requeue the job.
    env = service_env(jobs__lease_seconds="600", fake__seconds_per_char="0.05")
    svc = start_service(env)
    job = svc.submit("A sentence long enough to keep the worker busy for a while.")
    running = poll(
        lambda: (j := svc.job(job["id"]))["status"] == "running" and j, 30, "job running"
    )
    host, pid = parse_worker_id(running["worker_id"])
    assert host == socket.gethostname() and re.fullmatch(
        r".+:\d+:[0-9a-f]{8}", running["worker_id"]
    )
    os.kill(pid, signal.SIGKILL)
    done = svc.wait_job(job["id"], timeout=60)
    assert done["status"] == "succeeded" and done["attempts"] == 2, done
    assert done["worker_id"] != running["worker_id"]
    requeued = _events(svc.log(), "job.requeued")
    assert [(e["job_id"], e["reason"]) for e in requeued] == [(job["id"], "worker_died")]
