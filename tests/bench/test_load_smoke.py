"""bench/load.py and bench/soak.py run end to end at tiny sizes and write sane JSON.

Correctness only (the figures of a loaded test machine mean nothing): every accepted job ends,
counts add up, percentiles are ordered, and samples cover the API and the workers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
QUANTILES = ("p50", "p95", "p99", "max")


def _run(script: str, out: Path, *args: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYVOICE_")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--json", str(out), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _ordered(summary: dict[str, float] | None) -> None:
    assert summary is not None
    values = [summary[q] for q in QUANTILES]
    assert values == sorted(values) and values[0] >= 0, summary


def test_load_reports_each_level(tmp_path: Path) -> None:
    result = _run(
        "load.py",
        tmp_path / "load.json",
        *("--fake-seconds", "0.05", "--workers", "1", "--capacity-seconds", "3"),
        *("--levels", "50,200", "--seconds", "3", "--poll", "0.1"),
    )
    assert result["capacity"]["measured"] and result["capacity"]["jobs_per_second"] > 0
    assert [lv["level_pct"] for lv in result["levels"]] == [50, 200]
    for lv in result["levels"]:
        assert lv["accepted"] > 0, lv
        assert lv["offered"] == lv["accepted"] + sum(lv["refused"].values())
        assert all(code.split()[0] in ("503", "429") for code in lv["refused"]), lv["refused"]
        assert lv["failed"] == {} and lv["unfinished"] == 0
        assert lv["succeeded"] == lv["accepted"]
        for view in ("record", "client", "queue_wait"):
            _ordered(lv[view])
        # The client starts its clock before the job exists and stops it after the job ended.
        assert lv["client"]["p50"] >= lv["record"]["p50"] - 0.05
        assert isinstance(lv["slo"]["held"], bool)
    names = [t["target"] for t in result["targets"]]
    assert any(n.startswith("200 %") for n in names)
    assert all(isinstance(t["pass"], bool) for t in result["targets"])


def test_soak_samples_every_process(tmp_path: Path) -> None:
    result = _run(
        "soak.py",
        tmp_path / "soak.json",
        *("--fake-seconds", "0.02", "--workers", "2", "--rate", "4"),
        *("--minutes", "0.1", "--every", "0.5", "--csv", str(tmp_path / "soak.csv")),
    )
    assert result["load"]["accepted"] > 0
    assert result["load"]["succeeded"] == result["load"]["accepted"]
    samples = result["samples"]
    assert {s["role"] for s in samples} == {"api", "worker"}
    assert len({s["t"] for s in samples}) >= 4
    assert all(s["rss_mb"] > 0 and s["fds"] > 0 and s["threads"] >= 1 for s in samples)
    assert len(result["worker_pids_seen"]) >= 2
    for role in ("api", "worker"):
        for metric in ("rss_mb", "fds", "threads"):
            assert result["trends"][role][metric] is not None, (role, metric)
    assert len(result["targets"]) == 6
    lines = (tmp_path / "soak.csv").read_text().splitlines()
    assert lines[0] == "t,role,pid,rss_mb,fds,threads" and len(lines) == len(samples) + 1


def test_the_queueing_floor_is_an_ideal_queue(tmp_path: Path) -> None:
    """bench/queueing_floor.py: with no arrivals waiting (tiny load) latency is one service
    time; with Poisson arrivals at 80 % on 2 servers even the ideal queue's P99 is far over
    2 x P50 (the [Proof] target the load run cannot meet; docs/reliability.md)."""
    result = _run(
        "queueing_floor.py",
        tmp_path / "floor.json",
        "--servers",
        "2",
        "--load",
        "0.01",
        "0.8",
        "--jobs",
        "60000",
    )
    idle, busy = result["rows"]
    assert idle["p50"] == idle["p99"] == 1.0
    assert busy["p50"] > 1.0 and busy["p99_over_p50"] > 3.0, busy
