"""bench/chaos.py end to end, small: it must keep working and keep finding nothing wrong.

A handful of jobs through a real ``serve`` while a worker is SIGKILLed, the process group is
power-cut and started again, ``serve`` restarts gracefully and (on PostgreSQL) the database
connections are cut. Correctness only: no speed is asserted (that is the benchmark's job).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from chaos_runner import assert_nothing_lost, run_chaos  # type: ignore[import-not-found]

JOBS = 8
ARGS = (
    *("--clients", "3", "--workers", "2", "--kill-every", "10"),
    *("--job-seconds", "0.2", "--job-timeout", "90"),
)


def assert_faults_applied(chaos: dict[str, Any]) -> None:
    assert_nothing_lost(chaos, JOBS)
    assert "power_cut" in chaos["faults"] and "graceful_restart" in chaos["faults"]


@pytest.mark.timeout(240)
def test_chaos_on_sqlite_loses_nothing(tmp_path: Path) -> None:
    assert_faults_applied(run_chaos(tmp_path, JOBS, *ARGS))


@pytest.mark.timeout(240)
def test_chaos_on_postgresql_with_a_database_cut_loses_nothing(tmp_path: Path) -> None:
    chaos = run_chaos(tmp_path, JOBS, *ARGS, "--database", "postgresql", "--db-outage", "2")
    assert_faults_applied(chaos)
    assert chaos["faults"]["db_outage"]["connections_cut"] >= 1
