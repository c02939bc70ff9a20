"""``bench/chaos.py`` as the smoke tests run it: small, without a baseline, its JSON read back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_chaos(tmp_path: Path, jobs: int, *args: str, timeout: float = 200) -> dict[str, Any]:
    """Run the chaos on ``jobs`` jobs with ``args``; the figures of the run with faults."""
    out = tmp_path / "chaos.json"
    cmd = [
        sys.executable,
        str(ROOT / "bench" / "chaos.py"),
        *("--jobs", str(jobs), "--no-baseline", "--json", str(out), *args),
        # Admission may refuse (503 overloaded) when a killed worker makes the queue too slow
        # for the latency objective: a speed-dependent answer, so out of a correctness test.
        *("--env", "SLO__LATENCY_TARGET_SECONDS=600"),
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert out.exists(), f"exit {done.returncode}\n{done.stdout}\n{done.stderr[-4000:]}"
    result: dict[str, Any] = json.loads(out.read_text())["chaos"]
    return result


def assert_nothing_lost(chaos: dict[str, Any], jobs: int) -> None:
    """Every job accepted and finished once, no file twice or unrecorded, no 5xx, verify clean,
    and every planned fault applied, with at least one worker kill."""
    assert chaos["accepted"] == jobs, chaos["rejected"]
    assert chaos["lost"] == 0, chaos["lost_jobs"]
    assert chaos["duplicate_jobs"] == {}
    assert chaos["duplicate_files"] == {}
    assert chaos["unrecorded_files"] == []
    assert chaos["http_5xx"] == 0, chaos["http_5xx_by_code"]
    assert chaos["verify"]["exit"] == 0, chaos["verify"]
    assert chaos["verify"]["report"]["ok"] == chaos["succeeded"]
    assert chaos["faults"]["worker_kills"] >= 1
    assert chaos["faults"]["not_applied"] == 0
