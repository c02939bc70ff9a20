"""After a power cut (SIGKILL of the whole ``serve`` process group), the next ``serve`` on the
host requeues the jobs of its dead workers at once, and leaves a live ``serve``'s jobs alone."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from processes import Service, free_port, poll  # type: ignore[import-not-found]

from steadyvoice.jobs.liveness import WorkerRegistry
from steadyvoice.jobs.store import JobStore

LEASE = "600"  # waiting for a lease to expire would time the test out


class GroupService(Service):  # type: ignore[misc]
    """``serve`` in its own process group, so that a power cut is one ``killpg``."""

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "steadyvoice", *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def power_cut(self, store: JobStore) -> None:
        assert self.proc is not None
        workers = [w.pid for w in WorkerRegistry(store).live(3600) if _group(w.pid) == self.pid]
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        poll(lambda: not any(map(_running, workers)), 30, "the workers gone")


def _group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.fixture
def group_service(tmp_path: Path) -> Iterator[Callable[..., GroupService]]:
    started: list[GroupService] = []

    def start(env: dict[str, str], name: str) -> GroupService:
        port = free_port()
        env = {**env, "STEADYVOICE_API__PORT": str(port)}
        svc = GroupService(env, tmp_path / f"{name}-{len(started)}.log", port, [])
        svc.start()
        started.append(svc)
        svc.wait_up()
        svc.wait_ready()
        return svc

    yield start
    for svc in started:  # no graceful stop: it would wait for the long job to finish
        svc.http.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(svc.pid, signal.SIGKILL)
        assert svc.proc is not None
        svc.proc.wait()


def _running_job(svc: Service, text: str) -> dict[str, Any]:
    job_id = svc.submit(text)["id"]
    job: dict[str, Any] = poll(
        lambda: (j := svc.job(job_id))["status"] == "running" and j, 60, f"{job_id} running"
    )
    return job


def test_power_cut_requeues_at_once_and_a_live_serve_keeps_its_jobs(
    db_url: str,
    group_service: Callable[..., GroupService],
    service_env: Callable[..., dict[str, str]],
    tmp_path: Path,
) -> None:
    def env(name: str, seconds_per_char: str) -> dict[str, str]:
        return service_env(
            tmp_path / "data",
            engine="fake",
            workers="1",
            worker__spares="0",
            database_url=db_url,
            metrics_dir=str(tmp_path / f"metrics-{name}"),
            jobs__lease_seconds=LEASE,
            fake__seconds_per_char=seconds_per_char,
        )

    store = JobStore.from_url(db_url)
    try:
        # A: a live serve whose worker holds a long job for the whole test.
        live = group_service(env("live", "0.2"), "live")
        held = _running_job(live, "x" * 300)  # 60 s of work
        # B: another serve on the same database and host, cut off with its job running.
        cut = group_service(env("cut", "0.05"), "cut")
        lost = _running_job(cut, "y" * 60)  # 3 s of work
        assert lost["worker_id"] != held["worker_id"]
        cut.power_cut(store)
        assert live.job(lost["id"])["status"] == "running"  # its lease has ten minutes to go

        again = group_service(env("cut", "0.05"), "again")
        done = again.wait_job(lost["id"], timeout=90)
        assert done["status"] == "succeeded" and done["attempts"] == 2, done
        assert '"reason": "worker_gone"' in again.log()
        # The live serve's job was not touched: same worker, first attempt, still its lease.
        still = live.job(held["id"])
        assert still["status"] == "running" and still["attempts"] == 1
        assert still["worker_id"] == held["worker_id"]
    finally:
        store.engine.dispose()
