"""Docker helpers for tests/deploy_image: the CLI, waiting for health, one running container."""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any

import httpx
from processes import free_port, poll  # type: ignore[import-not-found]


def docker(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=check
    )


def inspect(name: str) -> dict[str, Any]:
    parsed: list[dict[str, Any]] = json.loads(docker("inspect", name).stdout)
    return parsed[0]


def wait_healthy(name: str, timeout: float = 90) -> None:
    def healthy() -> bool:
        state = inspect(name)["State"]
        assert state["Running"], f"{name} exited: {docker('logs', name).stderr[-2000:]}"
        return bool(state["Health"]["Status"] == "healthy")

    poll(healthy, timeout, f"{name} healthy", every=0.5)


def wait_ready(url: str, timeout: float = 60) -> None:
    """Until ``url``/readyz answers 200 (a worker has its engine loaded)."""

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    poll(ready, timeout, f"{url}/readyz 200", every=0.25)


class Container:
    """One running container of the image, on a free loopback port."""

    def __init__(self, image: str) -> None:
        self.name = f"sv-test-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        docker(
            "run",
            "-d",
            "--name",
            self.name,
            "-p",
            f"127.0.0.1:{self.port}:7860",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--cap-drop",
            "ALL",
            "--cpus",
            "2",
            "-e",
            "STEADYVOICE_WORKERS=1",
            image,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def key(self) -> str:
        return docker("exec", self.name, "cat", "/var/lib/steadyvoice/admin.key").stdout.strip()

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.key()}"}, timeout=30
        )

    def remove(self) -> None:
        docker("rm", "-f", "-v", self.name, check=False)
