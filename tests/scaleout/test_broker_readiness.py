"""``/readyz`` with ``dispatch.backend=celery`` while the broker is away: degraded, not unready.

A real ``serve --no-workers``, a Celery worker and a redis-server of the test's own, stopped and
started again: ``/readyz`` keeps answering 200 (quickly), names ``broker_unreachable`` under
``degraded`` while Redis is down and clears once it is back; a job submitted meanwhile is
accepted and completes after. A broker that accepts connections but never answers does not
hold up a readiness probe either.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery_topology import RedisServer, Topology, pg_database
from processes import Service, free_port, poll  # type: ignore[import-not-found]
from s3_server import S3Server  # type: ignore[import-not-found]

from steadyvoice.dispatch.broker_check import broker_check
from steadyvoice.settings import Settings

pytestmark = pytest.mark.timeout(180)

CHECK_SECONDS = "0.3"


@pytest.fixture
def topology(tmp_path: Path, s3_server: S3Server) -> Iterator[Topology]:
    broker = RedisServer(tmp_path / "redis.log")
    broker.start()
    with pg_database() as db_url:
        topo = Topology(tmp_path, db_url, broker, s3_server)
        try:
            port = free_port()
            env = topo.env("api", api__port=str(port), dispatch__broker_check_seconds=CHECK_SECONDS)
            api = Service(env, tmp_path / "api.log", port, ["--no-workers"])
            api.start()
            topo.apis.append(api)
            topo.wait_apis()
            topo.start_worker("fake")
            topo.wait_workers_ready(1)
            yield topo
        finally:
            topo.stop()
            if broker.proc is not None and broker.proc.poll() is None:
                broker.kill()


def _readyz(api: Service) -> tuple[int, dict[str, Any]]:
    started = time.monotonic()
    r = api.http.get("/readyz")
    assert time.monotonic() - started < 1.0, "a readiness probe never waits on the broker"
    body: dict[str, Any] = r.json()
    return r.status_code, body


def _broker_reasons(api: Service) -> list[str]:
    code, body = _readyz(api)
    assert code == 200 and not body["reasons"], body  # degraded, never unready for the broker
    return [r for r in body["degraded"] if r.startswith("broker_unreachable")]


def test_readiness_names_the_broker_while_it_is_down_and_jobs_wait_for_it(
    topology: Topology,
) -> None:
    api = topology.apis[0]
    poll(lambda: _readyz(api)[1]["status"] == "ready", 30, "ready with the broker up")

    topology.broker.kill()
    poll(lambda: _broker_reasons(api), 15, "broker_unreachable while Redis is down")
    assert _readyz(api)[1]["status"] == "degraded"
    job_id = api.submit("Accepted while the broker is down.")["id"]  # kept in the outbox

    topology.broker.start()
    poll(lambda: not _broker_reasons(api), 15, "the reason cleared once Redis is back")
    assert _readyz(api)[1]["status"] == "ready"
    [job] = topology.wait_finished([job_id], timeout=60)
    assert job.status == "succeeded", job.error_message


def test_a_broker_that_never_answers_does_not_hold_up_readiness() -> None:
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        settings = Settings(
            dispatch={
                "backend": "celery",
                "broker_url": f"redis://127.0.0.1:{port}/0",
                "publish_timeout_seconds": 0.3,
                "broker_check_seconds": 0.2,
            }
        )
        check = broker_check(settings)
        assert check is not None
        started = time.monotonic()
        first = check.unreachable()  # waits for the first answer, briefly
        assert time.monotonic() - started < 2.5
        reason = first or poll(check.unreachable, 10, "the silent broker reported")
        assert reason
        for _ in range(5):  # later probes answer from the cache, at once
            started = time.monotonic()
            assert check.unreachable()
            assert time.monotonic() - started < 0.1


def test_the_embedded_dispatch_has_no_broker_to_check() -> None:
    assert broker_check(Settings()) is None
