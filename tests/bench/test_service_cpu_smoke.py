"""bench/service_cpu.py runs end to end at a tiny size and writes sane JSON.

Correctness only (CPU figures of a loaded test machine are not the point): both kinds of call
are measured, each with the API's and the workers' share, and the parts add up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_service_cpu_reports_api_and_worker_cpu_per_call(tmp_path: Path) -> None:
    out = tmp_path / "cpu.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYVOICE_")}
    tiny = ("--requests", "6", "--warmup", "2", "--idle", "0.5")
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "service_cpu.py"), "--json", str(out), *tiny],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(out.read_text())
    assert [r["mode"] for r in results] == ["whole", "stream"]
    for r in results:
        assert r["requests"] == 6 and r["wall_ms"] > 0
        # Idle burn is subtracted, so a tiny run may land a hair either side of zero.
        assert abs(r["total_ms"] - r["api_ms"] - r["workers_ms"]) < 0.02
        assert r["api_ms"] > 0 and r["workers_ms"] > 0
    assert "| whole |" in done.stdout and "| stream |" in done.stdout
