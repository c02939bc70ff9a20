"""Fixtures that start real ``steadyvoice`` processes and always stop them."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from processes import Process, Service, ServiceFactory, free_port  # type: ignore[import-not-found]


@pytest.fixture
def service_env(tmp_path: Path) -> Callable[..., dict[str, str]]:
    """Environment for a service process: a clean copy of ours plus STEADYVOICE_* values."""

    def make(data_dir: Path | None = None, **values: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYVOICE_")}
        env["STEADYVOICE_DATA_DIR"] = str(data_dir or tmp_path / "data")
        env["STEADYVOICE_METRICS_DIR"] = str(tmp_path / "metrics")
        env["STEADYVOICE_JOBS__POLL_INTERVAL_SECONDS"] = "0.2"
        env.update({f"STEADYVOICE_{k.upper()}": v for k, v in values.items()})
        return env

    return make


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[ServiceFactory]:
    """Start ``steadyvoice serve`` processes; every one is stopped at the end of the test."""
    started: list[Process] = []

    def start(env: dict[str, str], *args: str, ready: bool = True) -> Service:
        port = free_port()
        env = {**env, "STEADYVOICE_API__PORT": str(port)}
        svc = Service(env, tmp_path / f"serve-{len(started)}.log", port, list(args))
        svc.start()
        started.append(svc)
        svc.wait_up()
        if ready:
            svc.wait_ready()
        return svc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Process]]:
    """Start standalone ``steadyvoice worker`` processes, stopped at the end of the test."""
    started: list[Process] = []

    def start(env: dict[str, str]) -> Process:
        proc = Process(["worker"], env, tmp_path / f"worker-{len(started)}.log")
        proc.start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
