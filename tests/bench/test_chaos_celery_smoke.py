"""bench/chaos.py on the Celery topology, small: it must keep working and keep finding nothing
wrong.

A handful of jobs through two API processes and one Celery worker (PostgreSQL, a redis-server of
the run's own, the S3 test server) while the worker's pool child is SIGKILLed, Redis is killed
and started again, the database connections are cut, an API restarts gracefully and Redis is
flushed. More clients than the worker serves at once, so messages wait in Redis when it fails.
The delays that lose a message are shortened (the benchmark keeps the service's defaults), so
the reapers send the lost messages again within seconds. Correctness only, no speed asserted.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from chaos_runner import assert_nothing_lost, run_chaos  # type: ignore[import-not-found]

JOBS = 12
SHORT = {
    "DISPATCH__REPUBLISH_SECONDS": "2",
    "JOBS__LEASE_SECONDS": "4",
    "JOBS__HEARTBEAT_SECONDS": "1",
    "JOBS__REAPER_INTERVAL_SECONDS": "0.5",
}


@pytest.mark.timeout(180)
def test_chaos_on_the_celery_topology_loses_nothing(tmp_path: Path) -> None:
    chaos = run_chaos(
        tmp_path,
        JOBS,
        *("--topology", "celery", "--apis", "2", "--workers", "1", "--clients", "4"),
        *("--kill-every", "60", "--job-seconds", "0.3", "--db-outage", "2"),
        *("--job-timeout", "60"),
        *(arg for name, value in SHORT.items() for arg in ("--env", f"{name}={value}")),
        timeout=170,
    )
    assert_nothing_lost(chaos, JOBS)
    faults = chaos["faults"]
    assert faults["kills"][0]["what"] == "pool child"
    assert faults["db_outage"]["connections_cut"] >= 1
    assert faults["graceful_restart"]["down_s"] > 0
    for name in ("redis_restart", "redis_flush"):  # messages were waiting when Redis failed
        assert faults[name]["messages_lost"] >= 1, faults[name]
        # Lost messages' jobs still ran, once each (above), sent again by the reapers.
        assert faults[name]["jobs_held_up"] >= 1, faults[name]
    assert faults["worker_start_lines"]["worker-0.log"]
