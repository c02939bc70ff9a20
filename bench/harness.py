"""A real ``steadyvoice serve`` for bench scripts: start it, submit work, break it, stop it.

Bench scripts run as ``python bench/x.py``, so ``bench/`` is on ``sys.path`` and they import
this module as ``harness``::

    from harness import Service, percentile

    with Service(workers=2, engine="fake", env={"FAKE__SECONDS_PER_CHAR": "0.005"}) as svc:
        job_id = svc.submit("Hello there.", idempotency_key="k1")
        svc.kill_worker()          # SIGKILL one worker
        svc.power_cut()            # SIGKILL the whole process group
        svc.start_again()          # same data dir, database and port
        svc.graceful_restart()     # SIGTERM, wait, start again

``serve`` runs in its own process group (its workers are in it too), so a power cut is one
``killpg``. Its database is SQLite in a temp data dir, or with ``postgres=True`` a fresh
database on the local PostgreSQL server that ``close()`` drops. Its log goes to ``log_path``.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from steadyvoice.storage.local import LocalStorage

PG_ADMIN_URL = os.environ.get(
    "STEADYVOICE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    check: Callable[..., Any], timeout: float, every: float = 0.002, what: str = "a condition"
) -> Any:
    """Call ``check`` until it returns something truthy (returned) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"benchmark wait timed out after {timeout}s: {what}")


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timestamp(value: str) -> float:
    """Unix seconds of an ISO 8601 time from a job record."""
    return datetime.fromisoformat(value).timestamp()


def process_alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid``, from every thread's ``/proc/<pid>/task/*/children``."""
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(c) for c in children.read_text().split()]
        except OSError:
            continue  # the thread ended while we looked
    return sorted(set(found))


def command_line(pid: int) -> list[str]:
    """A process's argv (empty if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def list_jobs(http: httpx.Client, status: str | None = None) -> list[dict[str, Any]]:
    """Every job an API lists (following ``next_cursor``), newest first; optionally of one
    status."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 500}
    if status is not None:
        params["status"] = status
    while True:
        r = http.get("/v1/jobs", params=params)
        r.raise_for_status()
        page = r.json()
        items += page["items"]
        if not page.get("next_cursor"):
            return items
        params["cursor"] = page["next_cursor"]


class PostgresDatabase:
    """A fresh database on the local PostgreSQL server (trust auth), dropped by ``close()``."""

    def __init__(self, admin_url: str = PG_ADMIN_URL) -> None:
        import psycopg

        self.admin_url = admin_url
        self.name = f"sv_bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        rest = admin_url.split("://", 1)[1]
        self.userinfo, hostpart = rest.split("@", 1) if "@" in rest else ("", rest)
        self.host, _, port = hostpart.split("/", 1)[0].partition(":")
        self.port = int(port or 5432)

    def url_via(self, host: str, port: int) -> str:
        """This database's SQLAlchemy URL, reached through ``host:port`` (say, a proxy)."""
        user = f"{self.userinfo}@" if self.userinfo else ""
        return f"postgresql+psycopg://{user}{host}:{port}/{self.name}"

    @property
    def url(self) -> str:
        """This database's SQLAlchemy URL on the server itself."""
        return self.url_via(self.host, self.port)

    def close(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class Service:
    """One ``steadyvoice serve`` (own process group) plus an authenticated HTTP client.

    ``env`` overrides ``STEADYVOICE_*`` settings by their name without the prefix
    (``{"JOBS__LEASE_SECONDS": "10"}``). ``database_url`` is used as given (the caller owns the
    database); else ``postgres=True`` makes a fresh PostgreSQL database, else SQLite in the
    data dir. Rate and in-flight limits are lifted so the load generator is not throttled
    (their cost per request is still paid).
    """

    def __init__(
        self,
        workers: int = 1,
        engine: str = "fake",
        *,
        threads: int | None = None,
        database_url: str | None = None,
        postgres: bool = False,
        env: dict[str, str] | None = None,
        ready_timeout: float = 120.0,
        keep: bool = False,
    ) -> None:
        self.workers = workers
        self.keep = keep
        self.root = Path(tempfile.mkdtemp(prefix="svbench-"))
        self.dir = self.root / "data"
        self.log_path = self.root / "serve.log"
        self.port = free_port()
        self.database: PostgresDatabase | None = None
        if database_url is None and postgres:
            self.database = PostgresDatabase()
            database_url = self.database.url
        self.database_url = database_url
        self.env = self._environment(engine, threads, env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        try:
            self.start_again(ready_timeout)
        except BaseException:
            self.close()
            raise

    def _environment(
        self, engine: str, threads: int | None, extra: dict[str, str]
    ) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYVOICE_")}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        values = {
            "DATA_DIR": str(self.dir),
            "METRICS_DIR": str(self.root / "metrics"),
            "ENGINE": engine,
            "WORKERS": str(self.workers),
            "API__PORT": str(self.port),
            "LOG_LEVEL": "WARNING",
            # Limits would throttle the load generator; their cost (a key check and a
            # rate-window write per request) is still paid and measured.
            "SECURITY__RATE_PER_MINUTE": "1000000",
            "SECURITY__MAX_IN_FLIGHT": "1000000",
        }
        if threads is not None:
            values["PIPER__THREADS"] = str(threads)
        if self.database_url is not None:
            values["DATABASE_URL"] = self.database_url
        values |= extra
        return env | {f"STEADYVOICE_{k.upper()}": v for k, v in values.items()}

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start ``serve`` (same data dir, database and port as before); don't wait."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "steadyvoice", "serve"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_again(self, timeout: float = 120.0) -> float:
        """Start ``serve`` and wait until it is ready with every worker; returns the seconds."""
        began = time.monotonic()
        self.start()
        self.wait_ready(timeout=timeout)
        self.use_admin_key()
        return time.monotonic() - began

    def ready_workers(self) -> int | None:
        """Workers ``/readyz`` counts as serving; ``None`` when the API does not answer."""
        try:
            r = self.http.get("/readyz", timeout=5)
        except httpx.TransportError:
            return None
        return int(r.json().get("workers", 0)) if r.status_code in (200, 503) else None

    def wait_ready(self, workers: int | None = None, timeout: float = 120.0) -> None:
        """Wait until ``/readyz`` says ready with at least ``workers`` (default: all) workers."""
        want = self.workers if workers is None else workers

        def ready() -> bool:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"serve is not running; see {self.log_path}:\n{self.log_tail()}")
            count = self.ready_workers()
            return count is not None and count >= want

        wait_for(ready, timeout, every=0.02, what=f"serve ready with {want} worker(s)")

    def use_admin_key(self) -> None:
        """Send the admin key the first start wrote into the data dir on every request."""
        key = (self.dir / "admin.key").read_text().strip()
        self.http.headers["Authorization"] = f"Bearer {key}"

    @property
    def pid(self) -> int:
        """The ``serve`` process id (also its process group id)."""
        assert self.proc is not None, "serve was never started"
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 60.0) -> int | None:
        """Graceful stop: SIGTERM, wait up to ``timeout``, then SIGKILL the whole group."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.power_cut()
        self._kill_group()  # anything it left behind
        return self.proc.returncode

    def graceful_restart(self, timeout: float = 120.0) -> float:
        """SIGTERM, wait for the exit, start again and wait for readiness; returns the seconds."""
        began = time.monotonic()
        self.stop(timeout)
        self.start_again(timeout)
        return time.monotonic() - began

    def power_cut(self) -> list[int]:
        """SIGKILL the whole process group (``serve`` and its workers); returns the pids killed."""
        if self.proc is None:
            return []
        victims = [self.proc.pid, *self.worker_pids()]
        self._kill_group()
        self.proc.wait()
        wait_for(lambda: not any(map(process_alive, victims)), 30, every=0.01, what="group gone")
        return victims

    def _kill_group(self) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def close(self) -> None:
        """Stop ``serve``, drop a database this harness made, delete the temp dir (unless kept)."""
        self.http.close()
        if self.proc is not None:
            self.stop()
        if self.database is not None:
            self.database.close()
            self.database = None
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Service:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- workers -----------------------------------------------------------------------

    def worker_pids(self) -> list[int]:
        """Live worker processes of the current ``serve`` (its ``steadyvoice worker`` children)."""
        if not self.running():
            return []
        return [
            pid
            for pid in child_pids(self.pid)
            if "worker" in command_line(pid) and process_alive(pid)
        ]

    def kill_worker(self, pid: int | None = None, sig: int = signal.SIGKILL) -> int | None:
        """Send ``sig`` to worker ``pid`` (default: a random live one); returns the pid or None."""
        if pid is None:
            pids = self.worker_pids()
            if not pids:
                return None
            pid = random.choice(pids)
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return None
        return pid

    # --- API -----------------------------------------------------------------------------

    def post_job(
        self, text: str, idempotency_key: str | None = None, **fields: Any
    ) -> httpx.Response:
        """``POST /v1/jobs`` as is: the caller looks at the status (transport errors raise)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self.http.post("/v1/jobs", json={"text": text, **fields}, headers=headers)

    def submit(self, text: str, idempotency_key: str | None = None, **fields: Any) -> str:
        """Queue a job; returns its id (raises on anything but success)."""
        r = self.post_job(text, idempotency_key, **fields)
        r.raise_for_status()
        return str(r.json()["id"])

    def job(self, job_id: str) -> dict[str, Any]:
        """One job record (``GET /v1/jobs/{id}``)."""
        r = self.http.get(f"/v1/jobs/{job_id}")
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        return body

    def all_jobs(self, status: str | None = None) -> list[dict[str, Any]]:
        """Every job (following ``next_cursor``), newest first; optionally of one status."""
        return list_jobs(self.http, status)

    def entry_points(self) -> list[Service]:
        """What clients send their requests to (``workload.run_clients``): this one API."""
        return [self]

    def stored_outputs(self) -> tuple[list[str], int]:
        """Output file names in the data dir, and how many temp files writes left there."""
        outputs = self.outputs_dir
        temp = len(list(outputs.rglob(".tmp-*"))) if outputs.exists() else 0
        return list(LocalStorage(outputs).names()), temp

    # --- files and the CLI ---------------------------------------------------------------

    @property
    def outputs_dir(self) -> Path:
        return self.dir / "outputs"

    def cli(self, *args: str, database_url: str | None = None) -> subprocess.CompletedProcess[str]:
        """``python -m steadyvoice ARGS`` on this data dir and database (``verify``, ``slo``)."""
        env = dict(self.env)
        if database_url is not None:
            env["STEADYVOICE_DATABASE_URL"] = database_url
        return subprocess.run(
            [sys.executable, "-m", "steadyvoice", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""
