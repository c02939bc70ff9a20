"""Real service processes for end-to-end tests: start, poll, stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

TERMINAL = {"succeeded", "failed", "canceled"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(args: list[str], data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m steadyvoice ARGS`` on ``data_dir``, with a clean STEADYVOICE_* environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("STEADYVOICE_")}
    base["STEADYVOICE_DATA_DIR"] = str(data_dir)
    base.update(env)
    return subprocess.run(
        [sys.executable, "-m", "steadyvoice", *args],
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )


def admin_key(data_dir: Path) -> str | None:
    """The admin key a first start wrote into ``data_dir`` (``None`` if there is none)."""
    path = data_dir / "admin.key"
    return path.read_text().strip() if path.exists() else None


def use_admin_key(client: httpx.Client, data_dir: Path) -> httpx.Client:
    """Make ``client`` send the admin key a first start wrote into ``data_dir``."""
    key = admin_key(data_dir)
    assert key is not None, f"no admin key in {data_dir}"
    client.headers["Authorization"] = f"Bearer {key}"
    return client


def poll(check: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Call ``check`` until it returns something truthy or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


class Process:
    """One ``python -m steadyvoice ...`` process with its own log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args = args
        self.env = env
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "steadyvoice", *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def stop(self, timeout: float = 60) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class Service(Process):
    """``steadyvoice serve`` plus an HTTP client for it."""

    def __init__(self, env: dict[str, str], log: Path, port: int, args: list[str]) -> None:
        super().__init__(["serve", *args], env, log)
        self.url = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def wait_up(self, timeout: float = 60) -> None:
        poll(self._answers, timeout, f"{self.url}/healthz")
        self.use_key(admin_key(Path(self.env["STEADYVOICE_DATA_DIR"])))

    def use_key(self, key: str | None) -> None:
        """Send this API key on every later call (``None``: send none)."""
        self.http.headers.pop("Authorization", None)
        if key is not None:
            self.http.headers["Authorization"] = f"Bearer {key}"

    def wait_ready(self, timeout: float = 90) -> None:
        poll(lambda: self._get("/readyz") == 200, timeout, f"{self.url}/readyz; log:\n{self.log()}")

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"service exited with {self.proc.returncode}:\n{self.log()}")
        return self._get("/healthz") == 200

    def _get(self, path: str) -> int | None:
        try:
            return self.http.get(path).status_code
        except httpx.TransportError:
            return None

    def submit(self, text: str, **fields: Any) -> dict[str, Any]:
        r = self.http.post("/v1/jobs", json={"text": text, **fields})
        assert r.status_code == 202, r.text
        body: dict[str, Any] = r.json()
        return body

    def job(self, job_id: str) -> dict[str, Any]:
        r = self.http.get(f"/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def wait_job(self, job_id: str, timeout: float = 90) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            job = self.job(job_id)
            return job if job["status"] in TERMINAL else None

        result: dict[str, Any] = poll(done, timeout, f"job {job_id}; log:\n{self.log()}")
        return result

    def stop(self, timeout: float = 60) -> int:
        self.http.close()
        return super().stop(timeout)


ServiceFactory = Callable[..., Service]
