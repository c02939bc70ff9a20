"""The dispatcher's own figures: how fast idle workers learn of a job, and jobs/s per worker count.

Topology 2 of docs/operations.md ("Scaling out"): PostgreSQL, ``serve --no-workers``, and N
standalone ``steadyvoice worker`` processes. The ``fake`` engine takes a fixed time per job
(every text has the same length), so what varies is the dispatch alone.

- queue wait (``started_at - created_at`` of the job record, the database's clock): jobs sent
  one at a time to idle workers, so no job waits behind another; P50 and P99 for
  ``notify`` (LISTEN/NOTIFY, the default on PostgreSQL), ``poll`` (the worker polls every
  ``jobs.poll_interval_seconds`` = 1 s, as standalone workers did before NOTIFY; the bench
  turns NOTIFY off in the worker processes only) and ``celery`` (``dispatch.backend=celery``
  on the local Redis; ``--modes ... celery``).
- throughput: a burst of jobs submitted at once, from the first accepted to the last finished
  (job records), with 1, 2 and 4 workers, against the ideal ``workers / delay``.

    python bench/dispatch.py [--jobs 100] [--burst 200] [--delay 0.05] [--workers 1 2 4]
                             [--modes notify poll celery]

The machine's other load shows in every figure: compare runs made on the same machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness import PostgresDatabase, Service, percentile, timestamp, wait_for

TEXT_CHARS = 20  # every job's text: the fake engine takes TEXT_CHARS * seconds_per_char
# Started by ``python -c``: the worker as ``steadyvoice worker`` runs it, with NOTIFY turned off
# so that it finds jobs by polling alone (its socket doorbell is never rung from a PG API).
_POLLING_WORKER = (
    "import sys; import steadyvoice.jobs.doorbell_pg as d; d.uses_notify = lambda s: False; "
    "from steadyvoice.cli import main; sys.exit(main(['worker']))"
)


def _text(i: int) -> str:
    return f"Job {i:06d} says hi."[:TEXT_CHARS].ljust(TEXT_CHARS, ".")


class Fleet:
    """``serve --no-workers`` on a fresh PostgreSQL database plus N standalone workers."""

    def __init__(self, mode: str, workers: int, delay: float, redis_db: int) -> None:
        self.database = PostgresDatabase()
        self.redis_db = redis_db if mode == "celery" else None
        self.procs: list[subprocess.Popen[bytes]] = []
        env = {
            "FAKE__SECONDS_PER_CHAR": str(delay / TEXT_CHARS),
            "JOBS__POLL_INTERVAL_SECONDS": "1.0",
            "WORKER__SPARES": "0",
            # A burst is the point here: admission would refuse most of it (503 overloaded)
            # against the default 5 s latency objective on one worker.
            "SLO__LATENCY_TARGET_SECONDS": "600",
        }
        if mode == "celery":
            env |= {
                "DISPATCH__BACKEND": "celery",
                "DISPATCH__BROKER_URL": f"redis://127.0.0.1:6379/{redis_db}",
            }
        self.svc = Service(workers=0, database_url=self.database.url, env=env)
        try:
            for i in range(workers):
                self._start_worker(mode, i)
            self.svc.wait_ready(workers=workers, timeout=180)
        except BaseException:
            self.close()
            raise

    def _start_worker(self, mode: str, index: int) -> None:
        args = {
            "notify": ["-m", "steadyvoice", "worker"],
            "poll": ["-c", _POLLING_WORKER],
            "celery": ["-m", "steadyvoice", "worker", "--queues", "fake"],
        }[mode]
        log = (self.svc.root / f"worker-{index}.log").open("ab")
        self.procs.append(
            subprocess.Popen(
                [sys.executable, *args], env=self.svc.env, stdout=log, stderr=subprocess.STDOUT
            )
        )

    def run(self, texts: list[str], sequential: bool) -> list[dict[str, object]]:
        """Submit ``texts`` (one at a time, each after the last finished; or all at once) and
        return their finished records."""
        if sequential:
            return [self._finished(self.svc.submit(t)) for t in texts]
        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(self.svc.submit, texts))
        return [self._finished(i) for i in ids]

    def _finished(self, job_id: str) -> dict[str, object]:
        def done() -> dict[str, object] | None:
            job = self.svc.job(job_id)
            return job if job["status"] in ("succeeded", "failed") else None

        job: dict[str, object] = wait_for(done, 300, every=0.005, what=f"job {job_id}")
        if job["status"] != "succeeded":
            raise RuntimeError(f"job {job_id} failed: {job.get('error')}")
        return job

    def close(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.svc.close()
        self.database.close()
        if self.redis_db is not None:  # the bench's own Redis db: leave nothing behind
            import redis

            redis.Redis(db=self.redis_db).flushdb()


def queue_waits(mode: str, jobs: int, delay: float, redis_db: int) -> dict[str, float]:
    fleet = Fleet(mode, 1, delay, redis_db)
    try:
        fleet.run([_text(i) for i in range(5)], sequential=True)  # warm-up
        waits = []
        for job in fleet.run([_text(i) for i in range(jobs)], sequential=True):
            started, created = str(job["started_at"]), str(job["created_at"])
            waits.append((timestamp(started) - timestamp(created)) * 1000)
    finally:
        fleet.close()
    return {"p50_ms": percentile(waits, 0.5), "p99_ms": percentile(waits, 0.99)}


def throughput(mode: str, workers: int, burst: int, delay: float, redis_db: int) -> float:
    fleet = Fleet(mode, workers, delay, redis_db)
    try:
        fleet.run([_text(i) for i in range(2 * workers)], sequential=False)  # warm-up
        done = fleet.run([_text(i) for i in range(burst)], sequential=False)
    finally:
        fleet.close()
    first = min(timestamp(str(j["created_at"])) for j in done)
    last = max(timestamp(str(j["finished_at"])) for j in done)
    return burst / (last - first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100, help="jobs per queue-wait run")
    parser.add_argument("--burst", type=int, default=200, help="jobs per throughput run")
    parser.add_argument("--delay", type=float, default=0.05, help="fake engine seconds per job")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument(
        "--modes", nargs="+", default=["notify", "poll"], choices=["notify", "poll", "celery"]
    )
    parser.add_argument("--redis-db", type=int, default=13, help="Redis db for celery (emptied)")
    args = parser.parse_args()
    modes = args.modes
    cpus = os.cpu_count()
    print(f"# {platform.node()} {platform.machine()}, {cpus} CPUs; fake engine {args.delay} s/job")
    print("\n| dispatch | queue wait P50 | P99 |\n|---|---|---|")
    for mode in modes:
        w = queue_waits(mode, args.jobs, args.delay, args.redis_db)
        print(f"| {mode} | {w['p50_ms']:.1f} ms | {w['p99_ms']:.1f} ms |", flush=True)
    print("\n| dispatch | workers | jobs/s | ideal | efficiency |\n|---|---|---|---|---|")
    for mode in [m for m in modes if m != "poll"]:
        for n in args.workers:
            rate = throughput(mode, n, args.burst, args.delay, args.redis_db)
            ideal = n / args.delay
            print(f"| {mode} | {n} | {rate:.1f} | {ideal:.0f} | {rate / ideal:.0%} |", flush=True)
    started = time.strftime("%Y-%m-%d")
    print(f"\n# {started}; {Path(sys.argv[0]).name} {' '.join(sys.argv[1:])}")


if __name__ == "__main__":
    main()
