"""The supervisor's restart policy, with a real ``serve``: crash loops back off, workers that
served work are replaced at once, and every recovery is measured (metric, log and SLO report)."""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from processes import Service, ServiceFactory, poll, run_cli  # type: ignore[import-not-found]

from steadyvoice.jobs.liveness import parse_worker_id

Env = Callable[..., dict[str, str]]


def _events(svc: Service, name: str) -> list[dict[str, Any]]:
    found = []
    for line in svc.log().splitlines():
        if f'"{name}"' in line:
            with_event = json.loads(line)
            if with_event.get("event") == name:
                found.append(with_event)
    return found


def _serving_pid(svc: Service, not_in: set[int]) -> int | None:
    """The worker now serving slot 0 (spawned there, or a spare promoted into it)."""
    pids = [e["pid"] for e in _events(svc, "worker.spawned") if not e["spare"]]
    pids += [e["pid"] for e in _events(svc, "worker.promoted")]
    live = [p for p in pids if p not in not_in]
    return live[-1] if live else None


def _recovered(svc: Service, worker_pid: int) -> dict[str, Any] | None:
    recovered = _events(svc, "worker.recovered")
    done = [e for e in recovered if parse_worker_id(e["worker_id"])[1] == worker_pid]
    return done[0] if done else None


def _recovery_count(svc: Service, restart: str) -> float:
    text = svc.http.get("/metrics").text
    pattern = rf'^steadyvoice_worker_recovery_seconds_count\{{restart="{restart}"\}} (\S+)$'
    match = re.search(pattern, text, re.MULTILINE)
    return float(match[1]) if match else 0.0


def _serve_one_job(svc: Service) -> None:
    job = svc.wait_job(svc.submit("One job, so the worker has served work.")["id"])
    assert job["status"] == "succeeded", job


def test_a_worker_that_served_work_is_replaced_at_once_and_a_crash_loop_backs_off(
    start_service: ServiceFactory, service_env: Env, tmp_path: Path
) -> None:
    flag = tmp_path / "broken-model"
    env = service_env(
        engine="fake",
        workers="1",
        worker__spares="0",
        fake__fail_load_while=str(flag),
    )
    svc = start_service(env)
    killed: set[int] = set()

    # 1. A worker that served a job and is killed: replaced at once, no backoff.
    _serve_one_job(svc)
    first = poll(lambda: _serving_pid(svc, killed), 30, "the first worker")
    os.kill(first, signal.SIGKILL)
    killed.add(first)
    recovered = poll(lambda: _recovered(svc, first), 60, f"the replacement; log:\n{svc.log()}")
    [exited] = [e for e in _events(svc, "worker.exited") if e["pid"] == first]
    assert exited["restart_in"] == 0 and exited["jobs_done"] == 1
    assert recovered["restart"] == "immediate" and recovered["crashes"] == 0
    assert recovered["seconds"] > 0

    # 2. The replacement serves too; then the model "breaks": every new worker dies loading.
    _serve_one_job(svc)
    second = poll(lambda: _serving_pid(svc, killed), 30, "the second worker")
    flag.touch()
    os.kill(second, signal.SIGKILL)
    killed.add(second)

    def crash_delays() -> list[float]:
        return [e["restart_in"] for e in _events(svc, "worker.exited") if e["code"] == 1]

    poll(lambda: len(crash_delays()) >= 3, 90, f"three crashes at load; log:\n{svc.log()}")
    assert crash_delays()[:3] == [0.5, 1.0, 2.0]  # doubling: a crash loop backs off
    flag.unlink()
    recovered = poll(lambda: _recovered(svc, second), 90, f"recovery; log:\n{svc.log()}")
    assert recovered["restart"] == "backoff" and recovered["crashes"] >= 3
    assert recovered["seconds"] >= 0.5 + 1.0 + 2.0  # at least the waits it sat out
    svc.wait_ready()

    # 3. Both recoveries are in the metric and in the SLO report (another process).
    assert _recovery_count(svc, "immediate") == 1 and _recovery_count(svc, "backoff") == 1
    out = run_cli(["slo", "report", "--json", "--window", "1h"], Path(env["STEADYVOICE_DATA_DIR"]))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)["worker_recovery"]
    assert (report["count"], report["immediate"], report["backoff"]) == (2, 1, 1)
    assert report["max_seconds"] >= recovered["seconds"] - 0.001
    text = run_cli(["slo", "report", "--window", "1h"], Path(env["STEADYVOICE_DATA_DIR"]))
    assert "worker deaths 2 (1 replaced at once, 1 after backoff)" in text.stdout


def test_a_spare_is_promoted_when_a_worker_dies(
    start_service: ServiceFactory, service_env: Env
) -> None:
    # Loading takes 2 s; a promoted spare has loaded already, so the slot needs no cold start.
    env = service_env(engine="fake", workers="1", worker__spares="1", fake__load_seconds="2")
    svc = start_service(env)
    spare = poll(
        lambda: next((e["pid"] for e in _events(svc, "worker.spawned") if e["spare"]), None),
        30,
        "the spare",
    )
    poll(lambda: '"standby"' in _standby_states(svc), 60, "the spare loaded and waiting")
    _serve_one_job(svc)
    first = poll(lambda: _serving_pid(svc, {spare}), 30, "the serving worker")
    os.kill(first, signal.SIGKILL)
    recovered = poll(lambda: _recovered(svc, first), 60, f"the promotion; log:\n{svc.log()}")
    assert parse_worker_id(recovered["replacement_id"])[1] == spare
    assert recovered["restart"] == "immediate"
    [promoted] = _events(svc, "worker.promoted")
    assert promoted["pid"] == spare and promoted["loaded"] is True
    # A new spare is started in the background, and the promoted one serves.
    new_spare = poll(lambda: _spares(svc)[1:], 30, "a new spare")[0]
    _serve_one_job(svc)
    # A spare that loaded fine and is killed is no crash loop: the next one starts at once.
    poll(lambda: '"standby"' in _standby_states(svc), 60, "the new spare loaded")
    os.kill(new_spare, signal.SIGKILL)
    exited = poll(
        lambda: [e for e in _events(svc, "worker.exited") if e["pid"] == new_spare], 30, "exit"
    )
    assert exited[0]["spare"] is True and exited[0]["restart_in"] == 0
    poll(lambda: len(_spares(svc)) == 3, 30, "a third spare")


def _spares(svc: Service) -> list[int]:
    return [e["pid"] for e in _events(svc, "worker.spawned") if e["spare"]]


def _standby_states(svc: Service) -> str:
    r = svc.http.get("/metrics")
    lines = [ln for ln in r.text.splitlines() if ln.startswith("steadyvoice_workers{")]
    return " ".join(ln for ln in lines if not ln.endswith(" 0.0"))
