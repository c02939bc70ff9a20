"""``serve`` and a standalone ``worker`` remove old temp files under outputs/ when they start:
what workers killed mid-write (or between staging and recording) left behind."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from processes import Process, ServiceFactory, poll  # type: ignore[import-not-found]

from steadyvoice.jobs.outputs import STALE_SECONDS

pytestmark = pytest.mark.timeout(120)


def _leave(outputs: Path, name: str, age: float) -> Path:
    path = outputs / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"partial")
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_serve_and_worker_sweep_old_temp_files_at_start(
    start_service: ServiceFactory,
    start_worker: Callable[[dict[str, str]], Process],
    service_env: Callable[..., dict[str, str]],
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    outputs = data / "outputs"
    old = STALE_SECONDS + 600
    staged = _leave(
        outputs, "2026/01/01/.tmp-output_20260101_000000_0123456789ab.wav.attempt-1", old
    )
    fresh = _leave(outputs, "2026/01/01/.tmp-still-being-written", 5)
    output = _leave(outputs, "2026/01/01/output_20260101_000000_0123456789ab.wav", old)
    env = service_env(data_dir=data)

    svc = start_service(env, "--no-workers", ready=False)
    assert not staged.exists(), "serve sweeps before it starts its workers"
    assert fresh.exists() and output.exists()
    assert '"outputs.swept"' in svc.log()
    svc.stop()

    killed = _leave(outputs, "2026/01/02/.tmp-k1ll3d0x", old)
    worker = start_worker(env)
    poll(lambda: not killed.exists(), 60, f"worker sweeps at start; log:\n{worker.log()}")
    assert fresh.exists() and output.exists()
