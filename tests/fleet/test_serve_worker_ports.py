"""``serve``'s own workers on ports of their own (``worker.metrics_port`` set on serve).

Each supervised worker serves exactly its own job counts on its port, the API's ``/metrics`` no
longer counts them (no double counting), and the fleet list shows each port. A successor on
the same port (a recycle) serves on from its predecessor's totals. A port another program
holds leaves the worker serving jobs, counted by the API instead, with one clear log line and
no restart.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from processes import Service, ServiceFactory, free_port, poll  # type: ignore[import-not-found]

from steadyvoice.observability.slot_metrics import port_range
from steadyvoice.settings import ConfigurationError

pytestmark = pytest.mark.timeout(180)

EnvFactory = Callable[..., dict[str, str]]


def _free_range(count: int) -> int:
    """A base port with ``count`` free ports from it (held by nobody just now)."""
    for _ in range(50):
        base = free_port()
        if base + count > 65_535:
            continue
        try:
            with _held(range(base, base + count)):
                return base
        except OSError:
            continue
    raise AssertionError("no free range of ports")


@contextmanager
def _held(ports: range) -> Iterator[None]:
    """Listening sockets on these ports while the block runs (an ``OSError`` if one is taken)."""
    sockets: list[socket.socket] = []
    try:
        for port in ports:
            sock = socket.socket()
            sockets.append(sock)
            sock.bind(("127.0.0.1", port))
            sock.listen()
        yield
    finally:
        for sock in sockets:
            sock.close()


def _total(samples: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in samples.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _succeeded(samples: str) -> float:
    return _total(samples, "steadyvoice_jobs_finished_total", status="succeeded")


def _scrape(port: int) -> str:
    return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text


def _workers(svc: Service) -> list[dict[str, Any]]:
    r = svc.http.get("/v1/workers")
    assert r.status_code == 200, r.text
    workers: list[dict[str, Any]] = r.json()["workers"]
    return workers


def _run(svc: Service, count: int, text: str = "Each worker takes its share.") -> list[str]:
    ids = [svc.submit(text)["id"] for _ in range(count)]
    for job_id in ids:
        assert svc.wait_job(job_id, timeout=60)["status"] == "succeeded"
    return ids


@pytest.fixture
def base_port() -> Iterator[int]:
    yield _free_range(2)


def test_each_local_worker_serves_its_own_jobs_on_its_port(
    service_env: EnvFactory, start_service: ServiceFactory, base_port: int
) -> None:
    env = service_env(
        engine="fake",
        workers="2",
        fake__seconds_per_char="0.01",
        worker__metrics_port=str(base_port),
    )
    svc = start_service(env)
    poll(lambda: len(_workers(svc)) == 2, 30, "both workers in the fleet list")
    ids = _run(svc, 6)

    by_port = {w["metrics_port"]: w["id"] for w in _workers(svc)}
    assert sorted(by_port) == [base_port, base_port + 1]
    ran = {w: 0 for w in by_port.values()}
    for job_id in ids:
        ran[svc.job(job_id)["worker_id"]] += 1
    for port, worker_id in by_port.items():  # counted just after the row is written: poll
        poll(lambda: _succeeded(_scrape(port)) == ran[worker_id], 10, f"port {port}'s count")  # noqa: B023
        assert "steadyvoice_job_queue_wait_seconds_count" in _scrape(port)
    api = svc.http.get("/metrics").text
    assert _succeeded(api) == 0, "the API's /metrics counts no job its workers' ports serve"
    assert "steadyvoice_http_requests_total" in api or "steadyvoice_jobs_submitted" in api


def test_a_recycled_worker_serves_on_from_its_predecessors_totals(
    service_env: EnvFactory, start_service: ServiceFactory, base_port: int
) -> None:
    env = service_env(engine="fake", worker__max_jobs="2", worker__metrics_port=str(base_port))
    svc = start_service(env)
    first = poll(lambda: _workers(svc), 30, "the worker in the fleet list")[0]
    _run(svc, 2)  # then it recycles
    second = poll(
        lambda: [w for w in _workers(svc) if w["id"] != first["id"] and w["serving"]],
        30,
        f"the recycled worker's successor; log:\n{svc.log()}",
    )[0]
    assert second["metrics_port"] == base_port, "the successor takes the freed port"
    _run(svc, 1)  # one of its two: it stays
    poll(lambda: _succeeded(_scrape(base_port)) == 3, 10, "the first worker's two, its own")
    recycles = _total(_scrape(base_port), "steadyvoice_worker_recycles_total", reason="max_jobs")
    assert recycles >= 1


def test_a_port_in_use_leaves_the_worker_serving_jobs_counted_by_the_api(
    service_env: EnvFactory, start_service: ServiceFactory, base_port: int
) -> None:
    env = service_env(engine="fake", worker__metrics_port=str(base_port))
    with _held(range(base_port, base_port + 1)):  # another program has the port
        svc = start_service(env)
        _run(svc, 2)
        [worker] = _workers(svc)
        assert worker["metrics_port"] is None
        assert worker["serving"]
        poll(lambda: _succeeded(svc.http.get("/metrics").text) == 2, 10, "counted by the API")
        log = svc.log().splitlines()
        unavailable = [line for line in log if '"worker.metrics_port_unavailable"' in line]
        assert len(unavailable) == 1 and "Address already in use" in unavailable[0], log
        assert sum('"worker.spawned"' in line for line in log) == 1, "no restart"


def test_the_port_range_is_one_port_per_worker_process_and_must_fit() -> None:
    assert port_range(9470, 3) == range(9470, 9473)
    assert not port_range(0, 3), "0: no ports, the API's /metrics serves the workers"
    with pytest.raises(ConfigurationError, match="no room for 2 worker processes"):
        port_range(65_535, 2)
