"""deploy/compose/compose.yaml brought up for real with the test image: healthy, ready, and
gone with its volume afterwards. Run by ``make test-deploy`` only (see conftest.py)."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import compose  # type: ignore[import-untyped]
from docker_containers import wait_ready  # type: ignore[import-not-found]
from processes import free_port  # type: ignore[import-not-found]

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(compose.__file__).parent / "docker-compose"  # the wheel's wrapper drops the status


def test_single_node_compose_comes_up_healthy_and_ready(image: str) -> None:
    port = free_port()
    project = f"sv-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "SV_IMAGE": image, "SV_PORT": str(port)}
    command = [str(BINARY), "-f", str(ROOT / "deploy/compose/compose.yaml"), "-p", project]
    try:
        up = subprocess.run(
            [*command, "up", "-d", "--wait", "--wait-timeout", "120"],
            capture_output=True,
            text=True,
            timeout=180,
            env=env,
            check=False,
        )
        assert up.returncode == 0, up.stderr
        wait_ready(f"http://127.0.0.1:{port}")
        ps = subprocess.run(
            [*command, "ps", "--format", "{{.Health}}"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=True,
        )
        assert ps.stdout.split() == ["healthy"]
    finally:
        subprocess.run(
            [*command, "down", "-v", "--timeout", "30"],
            capture_output=True,
            timeout=120,
            env=env,
            check=False,
        )
