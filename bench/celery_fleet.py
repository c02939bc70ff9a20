"""The Celery topology at the issue's size: 300 jobs through two API processes and three Celery
workers, each with its own data dir, sharing only PostgreSQL, Redis and S3.

The same processes as tests/scaleout/test_celery_dispatch.py (tests/scaleout/celery_topology.py):
a redis-server of its own, a fresh PostgreSQL database on the local server, moto's S3 server.
The fake engine with no delay, so the figures are the dispatch path's own (HTTP submit, outbox
send, Celery delivery, fenced claim, S3 upload, record). It checks what the test checks, at
full size: every job succeeded exactly once (attempt 1), its SHA-256 recorded, its object in the
bucket, and ``steadyvoice verify`` clean from another data dir.

    python bench/celery_fleet.py [--jobs 300] [--workers 3] [--apis 2] [--json out.json]

Run it on a quiet machine for figures to publish.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "scaleout")]  # the test topology

from celery_topology import RedisServer, Topology, pg_database, submit_many  # noqa: E402
from processes import run_cli  # noqa: E402
from s3_server import S3Server  # noqa: E402


def run(root: Path, jobs: int, workers: int, apis: int) -> dict[str, Any]:
    s3 = S3Server(root / "moto.log")
    s3.start()
    broker = RedisServer(root / "redis.log")
    broker.start()
    try:
        with pg_database() as db_url:
            topo = Topology(root, db_url, broker, s3)
            try:
                for _ in range(apis):
                    topo.start_api()
                for _ in range(workers):
                    topo.start_worker("fake")
                topo.wait_workers_ready(workers, timeout=120)
                started = time.perf_counter()
                ids = submit_many(topo.apis, jobs)
                done = topo.wait_finished(ids, timeout=max(120.0, jobs * 2.0))
                seconds = time.perf_counter() - started
                return _report(topo, done, seconds, workers, apis)
            finally:
                topo.stop()
    finally:
        broker.kill()
        s3.stop()


def _report(
    topo: Topology, done: list[Any], seconds: float, workers: int, apis: int
) -> dict[str, Any]:
    waits = sorted((j.started_at - j.created_at).total_seconds() * 1000 for j in done)
    objects = topo.output_keys()
    verify = run_cli(["verify"], topo.root / "verify", **topo.env("verify"))
    return {
        "jobs": len(done),
        "apis": apis,
        "workers": workers,
        "seconds": round(seconds, 2),
        "jobs_per_second": round(len(done) / seconds, 1),
        "queue_wait_ms_p50": round(statistics.median(waits), 1),
        "queue_wait_ms_p99": round(waits[min(len(waits) - 1, int(len(waits) * 0.99))], 1),
        "succeeded": sum(j.status == "succeeded" for j in done),
        "ran_more_than_once": sum(j.attempts != 1 for j in done),
        "hash_missing": sum(not j.sha256 for j in done),
        "object_missing": sum(f"sv/outputs/{j.output_name}" not in objects for j in done),
        "verify_clean": verify.returncode == 0,
        "workers_used": len({j.worker_id for j in done}),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--apis", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="celery-fleet-") as tmp:
        report = run(Path(tmp), args.jobs, args.workers, args.apis)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    healthy = (
        report["succeeded"] == report["jobs"]
        and not report["ran_more_than_once"]
        and not report["hash_missing"]
        and not report["object_missing"]
        and report["verify_clean"]
    )
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
