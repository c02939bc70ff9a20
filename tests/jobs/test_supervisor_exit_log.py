"""The supervisor's ``worker.exited`` line: a clean exit is INFO, a worker killed by a signal is
a WARNING that names the signal."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from typing import Any

from processes import Service, ServiceFactory, poll  # type: ignore[import-not-found]

Env = Callable[..., dict[str, str]]


def _events(svc: Service, name: str) -> list[dict[str, Any]]:
    lines = (json.loads(line) for line in svc.log().splitlines() if line.startswith("{"))
    return [e for e in lines if e.get("event") == name]


def _exit_of(svc: Service, pid: int) -> dict[str, Any] | None:
    return next((e for e in _events(svc, "worker.exited") if e["pid"] == pid), None)


def test_a_worker_killed_by_a_signal_is_a_warning_naming_it(
    start_service: ServiceFactory, service_env: Env
) -> None:
    # worker.max_jobs=1: the first worker exits 0 after its job (a clean exit to compare with).
    svc = start_service(service_env(engine="fake", worker__max_jobs="1"))
    [first] = [e["pid"] for e in _events(svc, "worker.spawned")]
    assert svc.wait_job(svc.submit("One job, then the worker is recycled.")["id"])["status"] == (
        "succeeded"
    )
    clean = poll(lambda: _exit_of(svc, first), 60, f"the recycled worker's exit:\n{svc.log()}")
    assert clean["level"] == "INFO" and clean["code"] == 0 and clean["signal"] is None

    def second_worker() -> int | None:
        pids = [e["pid"] for e in _events(svc, "worker.spawned") if e["pid"] != first]
        return pids[0] if pids else None

    second = poll(second_worker, 60, "the replacement worker")
    svc.wait_ready()
    os.kill(second, signal.SIGKILL)
    killed = poll(lambda: _exit_of(svc, second), 60, f"the killed worker's exit:\n{svc.log()}")
    assert killed["level"] == "WARNING"
    assert killed["signal"] == "SIGKILL" and killed["code"] == -signal.SIGKILL
