"""The Celery topology as ``bench/chaos.py``'s system under test, and the faults it gets there.

``python bench/chaos.py --topology celery`` runs the chaos on the issue's deployment: PostgreSQL
(the run's fresh database, behind the harness's TCP proxy), a redis-server of its own, moto's
S3 server, ``--apis`` API processes (``serve --no-workers``, ``dispatch.backend=celery``) and
``--workers`` Celery workers (``steadyvoice worker --queues fake``), each process in a data dir
of its own, sharing only PostgreSQL, Redis and the bucket. The processes are the scale-out
tests' (tests/scaleout/celery_topology.py), but every setting the tests shorten (lease,
heartbeat, reaper, republish, admission) is left at the service's default, so the delays are
an operator's; ``--env NAME=VALUE`` sets one for every process.

The faults (:class:`CeleryFaults`), on chaos.py's schedule: a SIGKILL every ``--kill-every``
seconds, in turn of the pool child running a job (its Celery parent forks another and puts the
message back) and of a whole worker, parent and child (started again here, as systemd or
Kubernetes would); Redis killed and started again on its port a third of the way (no
persistence: every message is lost); half way the database cut, then a ``FLUSHALL`` (once the
jobs the restart held up have started and a message waits in the queue); a graceful restart
of one API at two thirds. The APIs' reapers must send again what the broker lost. Each fault's
figures say how long the jobs it held up waited.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "scaleout")]  # the test topology

from celery_topology import RedisServer, Topology  # noqa: E402
from faults import Faults, first_finish_after, share  # noqa: E402
from harness import child_pids, list_jobs, process_alive, timestamp, wait_for  # noqa: E402
from processes import Process, run_cli  # noqa: E402
from processes import Service as Api  # noqa: E402
from s3_server import S3Server  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from workload import Tally  # noqa: E402

from steadyvoice.jobs.liveness import BUSY, READY  # noqa: E402
from steadyvoice.jobs.models import Job, Worker  # noqa: E402
from steadyvoice.jobs.store import JobStore  # noqa: E402

QUEUE = "fake"
# What celery_topology shortens for the tests' speed; here the service's defaults apply.
TEST_SHORTENED = (
    "jobs__lease_seconds",
    "jobs__heartbeat_seconds",
    "jobs__reaper_interval_seconds",
    "dispatch__republish_seconds",
    "admission__enabled",
)
MESSAGE_WAIT = 10.0  # seconds a broker fault waits for a message to lose
SETTLE_WAIT = 300.0  # seconds the flush waits for the restart's held-up jobs to start
# A worker's start in its log: Celery's banner (name, transport, pool, queues) and our events.
START_LINES = ("-------------- steadyvoice-", ".> ", '"worker.celery"', '"worker.ready"')


class _Topology(Topology):
    """The tests' topology with the service's own defaults, plus the run's ``extra`` settings."""

    def __init__(self, *args: Any, extra: dict[str, str]) -> None:
        super().__init__(*args)
        self.extra = extra

    def env(self, name: str, **values: str) -> dict[str, str]:
        env = super().env(name, **(self.extra | values))
        for key in TEST_SHORTENED:
            if key not in self.extra and key not in values:
                env.pop(f"STEADYVOICE_{key.upper()}", None)
        return env


class Fleet:
    """The processes of one Celery deployment, with what chaos.py's clients, faults and audit
    ask of a service: entry points, ``kill_worker``, ``graceful_restart``, the job list,
    ``stop``, the stored outputs and the CLI."""

    def __init__(
        self,
        apis: int,
        workers: int,
        database_url: str,
        direct_url: str,
        env: dict[str, str],
        keep: bool = False,
    ) -> None:
        self.keep = keep
        self.root = Path(tempfile.mkdtemp(prefix="svchaos-celery-"))
        self.log_path = self.root  # every process's log is in here
        self.direct_url = direct_url
        self.s3 = S3Server(self.root / "moto.log")
        self.broker = RedisServer(self.root / "redis.log")
        self.topo: _Topology | None = None
        self.kills: list[dict[str, Any]] = []
        self.starts: list[dict[str, Any]] = []
        self._began = time.time()
        self._stopped = False
        try:
            self._start(apis, workers, database_url, {k.lower(): v for k, v in env.items()})
        except BaseException:
            self.close()
            raise

    def _start(self, apis: int, workers: int, database_url: str, extra: dict[str, str]) -> None:
        self.s3.start()
        self.broker.start()
        topo = self.topo = _Topology(self.root, database_url, self.broker, self.s3, extra=extra)
        topo.store.engine.dispose()  # the harness reads directly, never through the proxy
        topo.store = JobStore.from_url(self.direct_url)
        topo.start_api()  # first and alone: it migrates the database
        for _ in range(apis - 1):
            topo.start_api(wait=False)
        for _ in range(workers):
            self._note_start(topo.start_worker(QUEUE))
        self.wait_ready(timeout=120)

    @property
    def fleet(self) -> _Topology:
        assert self.topo is not None, "the fleet did not start"
        return self.topo

    # --- what the clients and the audit use -------------------------------------------

    def entry_points(self) -> list[Api]:
        return self.fleet.apis

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Every API answers (with the admin key) and every worker has a live, ready child."""
        self.fleet.wait_apis()
        want = len(self.fleet.workers)
        wait_for(lambda: len(self.live_children()) >= want, timeout, 0.1, f"{want} workers")

    def live_children(self) -> list[Worker]:
        """Worker rows (one per pool child) of processes still alive, ready or busy."""
        with self.fleet.store.reading() as s:
            rows = list(s.scalars(select(Worker)))
        return [w for w in rows if w.state in (READY, BUSY) and process_alive(w.pid)]

    def all_jobs(self) -> list[dict[str, Any]]:
        return list_jobs(self.fleet.apis[0].http)

    def stop(self) -> None:
        if self.topo is not None and not self._stopped:
            self._stopped = True
            self.topo.stop()

    def stored_outputs(self) -> tuple[list[str], int]:
        """Output object keys in the bucket, and temp files left in any process's data dir."""
        return sorted(self.fleet.output_keys()), len(list(self.root.rglob(".tmp-*")))

    def cli(self, *args: str, database_url: str | None = None) -> CompletedProcess[str]:
        """``steadyvoice ARGS`` as another host would run it: its own data dir, the database
        (directly), the bucket."""
        env = self.fleet.env("verify", database_url=database_url or self.direct_url)
        return run_cli(list(args), self.root / "verify", **env)

    def close(self) -> None:
        self.stop()
        if self.broker.proc is not None:
            self.broker.kill()
        self.s3.stop()
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    # --- faults ------------------------------------------------------------------------

    def kill_worker(self) -> int | None:
        """SIGKILL, in turn, the pool child running a job (its Celery parent forks another and
        rejects the message back to the queue) and a whole worker, parent and child, which is
        then started again (as systemd or Kubernetes would). Waits for the replacement child
        to be ready; returns the first pid killed."""
        whole = len(self.kills) % 2 == 1
        worker, child, job = self._victim()
        if worker is None or child is None:
            return None
        assert worker.proc is not None
        pids = [worker.proc.pid, child] if whole else [child]
        began, at = time.monotonic(), time.time()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        if whole:
            worker.proc.wait()
            worker.start()
            self._note_start(worker)
        wait_for(
            lambda: self._new_child_ready(worker, pids), 120, 0.02, "the replacement to be ready"
        )
        self.kills.append(
            {
                "at_unix": at,
                "what": "worker (parent and child)" if whole else "pool child",
                "pids": pids,
                "job": job,
                "replacement_ready_s": round(time.monotonic() - began, 2),
            }
        )
        return pids[0]

    def _victim(self) -> tuple[Process | None, int | None, str | None]:
        """A worker, its pool child and the job the child runs: one running a job if any."""
        mains = {
            c: w
            for w in self.fleet.workers
            if w.proc is not None and w.proc.poll() is None
            for c in child_pids(w.proc.pid)
        }
        with self.fleet.store.reading() as s:
            running = [
                (j.id, j.worker_id) for j in s.scalars(select(Job).where(Job.status == "running"))
            ]
        busy = [(self.fleet.worker_pid(wid), jid) for jid, wid in running if wid]
        busy = [(pid, jid) for pid, jid in busy if pid in mains]
        if busy:
            pid, jid = random.choice(busy)
            return mains[pid], pid, jid
        if not mains:
            return None, None, None
        pid = random.choice(list(mains))
        return mains[pid], pid, None

    def _new_child_ready(self, worker: Process, gone: list[int]) -> bool:
        assert worker.proc is not None
        children = set(child_pids(worker.proc.pid)) - set(gone)
        return any(w.pid in children for w in self.live_children())

    def _note_start(self, worker: Process) -> None:
        self.starts.append(
            {
                "after_fleet_start_s": round(time.time() - self._began, 2),
                "log": worker.log_path.name,
                "command": "python -m steadyvoice " + " ".join(worker.args),
            }
        )

    def start_lines(self) -> dict[str, list[str]]:
        """Each worker's start lines from its log, every start (and pool child) of it."""
        return {
            w.log_path.name: [
                ln.strip() for ln in w.log().splitlines() if any(m in ln for m in START_LINES)
            ]
            for w in self.fleet.workers
        }

    def graceful_restart(self, timeout: float = 120.0) -> float:
        """SIGTERM the first API, wait for its exit, start it again on its port; the seconds
        until it answers again."""
        began = time.monotonic()
        old = self.fleet.apis[0]
        old.stop(timeout)
        port = int(old.url.rsplit(":", 1)[1])
        api = Api(old.env, old.log_path, port, old.args[1:])
        api.start()
        self.fleet.apis[0] = api
        self.fleet.wait_apis()
        return time.monotonic() - began

    def queued_before(self, at: float) -> int:
        """Jobs created before ``at`` (Unix time) and still queued."""
        since = datetime.fromtimestamp(at, UTC)
        query = select(func.count()).where(Job.status == "queued", Job.created_at < since)
        with self.fleet.store.reading() as s:
            return int(s.scalar(query) or 0)

    def queued_messages(self) -> int:
        """Messages waiting in the queue, not yet delivered to a worker."""
        return int(self.broker.client().llen(QUEUE))

    def broker_messages(self) -> int:
        """Messages Redis holds for the workers: waiting in the queue or delivered, unacked."""
        client = self.broker.client()
        return int(client.llen(QUEUE)) + int(client.hlen("unacked"))


class CeleryFaults(Faults):
    """chaos.py's faults for the Celery topology: no process group holds the whole fleet, so
    instead of a power cut the broker fails: restarted a third of the way, flushed half way
    (after the database cut); the worker kills, the database cut and the graceful restart of an
    API (two thirds) stay."""

    def __init__(self, service: Fleet, tally: Tally, jobs: int, *schedule: Any) -> None:
        """``schedule``: the rest of :class:`Faults`'s arguments (kill interval, proxy, outage)."""
        super().__init__(service, tally, jobs, *schedule)  # type: ignore[arg-type]
        self.fleet = service
        kept = [(at, apply) for at, apply in self.plan if apply != self.power_cut]
        broker = [(share(jobs, 1 / 3), self.redis_restart), (share(jobs, 1 / 2), self.redis_flush)]
        self.plan = sorted([*kept, *broker], key=lambda step: step[0])

    def redis_restart(self) -> None:
        """SIGKILL redis-server and start it again on its port: every message is gone. Waits
        (up to ``MESSAGE_WAIT`` seconds) for a message to be waiting in the queue."""
        self._await_message()
        began = time.monotonic()
        lost = self.fleet.broker_messages()
        self.fleet.broker.kill()
        self.fleet.broker.start()
        self._broker_event("redis_restart", began, lost)

    def redis_flush(self) -> None:
        """``FLUSHALL``: the queue and the delivered, unacknowledged messages are gone. Waits
        (up to ``SETTLE_WAIT`` seconds) for the jobs the Redis restart held up to have started,
        then for a message to be waiting in the queue."""
        restart = self.events.get("redis_restart")
        if restart:  # the jobs the restart held up start first: each fault's delays its own
            held = restart["ready_at"]
            with contextlib.suppress(TimeoutError):
                wait_for(lambda: not self.fleet.queued_before(held), SETTLE_WAIT, 0.2, "held jobs")
        self._await_message()
        began = time.monotonic()
        lost = self.fleet.broker_messages()
        self.fleet.broker.client().flushall()
        self._broker_event("redis_flush", began, lost)

    def _await_message(self) -> None:
        """Up to ``MESSAGE_WAIT`` seconds for a message waiting in the queue, for the fault to
        lose (a run's last jobs may leave none)."""
        with contextlib.suppress(TimeoutError):
            wait_for(self.fleet.queued_messages, MESSAGE_WAIT, 0.01, "a message waiting")

    def _broker_event(self, name: str, began: float, lost: int) -> None:
        self.events[name] = {
            "at_s": round(began - self._began, 2),
            "messages_lost": lost,
            "down_s": round(time.monotonic() - began, 2),
            "ready_at": time.time(),
        }

    def recovery(self, jobs: dict[str, dict[str, Any]]) -> None:
        """Per broker fault, how long the jobs already waiting then still waited; per kill,
        when its job finished and in how many attempts."""
        super().recovery(jobs)
        for name in ("redis_restart", "redis_flush"):
            event = self.events.get(name)
            if event:
                event["first_job_done_after_ready_s"] = first_finish_after(jobs, event["ready_at"])
                event |= held_up(jobs, event["ready_at"])
        for kill in self.fleet.kills:
            job = jobs.get(kill["job"] or "")
            if job and job.get("finished_at"):
                done = timestamp(job["finished_at"]) - kill["at_unix"]
                kill["job_done_after_s"] = round(done, 2)
                kill["job_attempts"] = job.get("attempts")

    def summary(self) -> dict[str, Any]:
        kills = self.fleet.kills
        done = [k["job_done_after_s"] for k in kills if "job_done_after_s" in k]
        return {
            **super().summary(),
            "kills": kills,
            "replacement_ready_s": _spread([k["replacement_ready_s"] for k in kills]),
            "job_done_after_kill_s": _spread(done),
            "worker_starts": self.fleet.starts,
            "worker_start_lines": self.fleet.start_lines(),
        }


def held_up(jobs: dict[str, dict[str, Any]], at: float) -> dict[str, Any]:
    """The jobs created before ``at`` (Unix time) and started after it, and how long after."""
    waits = [
        timestamp(j["started_at"]) - at
        for j in jobs.values()
        if timestamp(j["created_at"]) < at
        and j.get("started_at")
        and timestamp(j["started_at"]) >= at
    ]
    return {"jobs_held_up": len(waits), "held_up_start_after_s": _spread(waits)}


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": round(statistics.median(values), 2), "max": round(max(values), 2)}
