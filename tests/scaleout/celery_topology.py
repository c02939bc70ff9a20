"""The Celery topology as real processes: a Redis of its own, PostgreSQL, the S3 test server,
API processes and ``steadyvoice worker --queues`` processes, each with its own data dir, sharing
only PostgreSQL, Redis and S3 (what hosts of a real deployment share)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import redis
from processes import Process, Service, free_port, poll  # type: ignore[import-not-found]
from s3_server import S3Server, storage_env  # type: ignore[import-not-found]
from sqlalchemy import select

from steadyvoice.jobs.liveness import parse_worker_id
from steadyvoice.jobs.models import Job, Worker
from steadyvoice.jobs.store import JobStore

PG_ADMIN_URL = os.environ.get(
    "STEADYVOICE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
)


class RedisServer:
    """A redis-server of the test's own on a free port, without persistence: a restart loses
    every message, as a flushed or crashed broker would."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                    *("--save", "", "--appendonly", "no"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        poll(self._answers, 10, f"redis-server on {self.port}")

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()


@contextmanager
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for a whole module, dropped afterwards."""
    name = f"sv_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].split("://", 1)[1]
    try:
        yield f"postgresql+psycopg://{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Topology:
    """The processes of one Celery deployment, and what the tests ask of them."""

    def __init__(self, root: Path, db_url: str, broker: RedisServer, s3: S3Server) -> None:
        self.root = root
        self.db_url = db_url
        self.broker = broker
        self.s3 = s3
        self.bucket = s3.new_bucket()
        self.store = JobStore.from_url(db_url)
        self.apis: list[Service] = []
        self.workers: list[Process] = []

    def env(self, name: str, **values: str) -> dict[str, str]:
        """A process's environment: its own data dir, the shared database, broker and bucket."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYVOICE_")}
        env.update(self.s3.env())
        settings = {
            "data_dir": str(self.root / name),
            "metrics_dir": str(self.root / name / "metrics"),
            "database_url": self.db_url,
            "engine": "fake",
            "dispatch__backend": "celery",
            "dispatch__broker_url": self.broker.url,
            "dispatch__republish_seconds": "2",
            "jobs__lease_seconds": "2",
            "jobs__heartbeat_seconds": "0.5",
            "jobs__reaper_interval_seconds": "0.5",
            "admission__enabled": "false",
            "security__rate_per_minute": "100000",
            "security__max_in_flight": "100000",
            **storage_env(self.s3, self.bucket),
            **values,
        }
        env.update({f"STEADYVOICE_{k.upper()}": v for k, v in settings.items()})
        return env

    def start_api(self, wait: bool = True) -> Service:
        """An API process; ``wait=False``: call ``wait_apis`` later (start others meanwhile)."""
        name = f"api-{len(self.apis)}"
        port = free_port()
        env = self.env(name, api__port=str(port))
        api = Service(env, self.root / f"{name}.log", port, ["--no-workers"])
        api.start()
        self.apis.append(api)
        if wait:
            self.wait_apis()
        return api

    def wait_apis(self, timeout: float = 120) -> None:
        """Wait for every API process to answer (processes started side by side import at
        once: on a loaded 2-core machine one took 45 s)."""
        for api in self.apis:
            api.wait_up(timeout)
        for api in self.apis[1:]:  # keys live in the shared database: the first's serves all
            api.http.headers.update(self.apis[0].http.headers)

    def start_worker(self, queues: str, **values: str) -> Process:
        name = f"worker-{len(self.workers)}"
        worker = Process(
            ["worker", "--queues", queues], self.env(name, **values), self.root / f"{name}.log"
        )
        worker.start()
        self.workers.append(worker)
        return worker

    def wait_workers_ready(self, count: int, timeout: float = 60) -> None:
        def ready() -> bool:
            with self.store.reading() as s:
                states = list(s.scalars(select(Worker.state)))
            return states.count("ready") + states.count("busy") >= count

        poll(ready, timeout, f"{count} ready workers; logs:\n{self.logs()}", every=0.2)

    def logs(self) -> str:
        return "\n".join(w.log()[-3000:] for w in self.workers)

    def jobs(self, ids: list[str]) -> list[Job]:
        with self.store.reading() as s:
            return list(s.scalars(select(Job).where(Job.id.in_(ids))))

    def wait_finished(self, ids: list[str], timeout: float) -> list[Job]:
        def done() -> list[Job] | None:
            jobs = self.jobs(ids)
            finished = [j for j in jobs if j.status in {"succeeded", "failed", "canceled"}]
            return jobs if len(finished) == len(ids) else None

        finished: list[Job] = poll(done, timeout, f"{len(ids)} jobs; logs:\n{self.logs()}", 0.2)
        return finished

    def output_keys(self) -> set[str]:
        client = self.s3.client()
        keys: set[str] = set()
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix="sv/outputs/"
        ):
            keys.update(item["Key"] for item in page.get("Contents", []))
        return keys

    def worker_pid(self, worker_id: str) -> int:
        return parse_worker_id(worker_id)[1]

    def signal_workers(self, sig: signal.Signals) -> None:
        """``sig`` to every worker's whole process tree (Celery parent and pool child)."""
        for worker in self.workers:
            assert worker.proc is not None
            for pid in [worker.proc.pid, *_children(worker.proc.pid)]:
                with contextlib.suppress(ProcessLookupError):  # a child Celery just retired
                    os.kill(pid, sig)

    def stop(self) -> None:
        """SIGTERM to every process at once (warm shutdowns overlap), then wait for each."""
        processes = [p for p in [*self.workers, *self.apis] if p.proc is not None]
        for process in processes:
            if process.proc.poll() is None:
                process.proc.send_signal(signal.SIGTERM)
        for process in processes:
            process.stop(timeout=20)
        self.store.engine.dispose()


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def submit_many(apis: list[Service], count: int, **fields: Any) -> list[str]:
    """``count`` jobs, spread over the API processes in turn; their ids, in job-number order.

    One client per API process submits its share, the API processes side by side: each
    process serves one request at a time, as before, and the whole takes 1/len(apis) of the
    time."""

    def share(k: int) -> list[str]:
        return [
            apis[k].submit(f"Job number {i} of the fleet.", **fields)["id"]
            for i in range(k, count, len(apis))
        ]

    with ThreadPoolExecutor(max_workers=len(apis)) as pool:
        shares = list(pool.map(share, range(len(apis))))
    return [shares[i % len(apis)][i // len(apis)] for i in range(count)]
