"""Backup throughput and restore time for many jobs (docs/benchmarks.md, "Backup and restore").

Makes ``--jobs`` succeeded jobs directly (rows inserted in bulk, a ``--size``-byte file each;
no synthesis), then times, in-process:

1. ``backup create`` into an empty destination (every file copied): files/s and MB/s;
2. ``backup create`` again with nothing new (the incremental case: a listing and a snapshot);
3. ``backup verify`` (every object re-read and re-hashed);
4. ``backup restore`` into an empty data dir (the SQLite database and every file).

    python bench/backup.py [--jobs 10000] [--size 65536] [--parallel 4] [--database URL]
        [--dest DIR_OR_S3_URL] [--json out.json]

``--database`` takes an empty PostgreSQL database to back up (restore then needs a second
empty one: ``--restore-database``); the default is SQLite in a temp data dir. The destination
defaults to a temp folder on the same disk.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from steadyvoice.backup.create import create
from steadyvoice.backup.destinations import open_destination
from steadyvoice.backup.restore import restore
from steadyvoice.backup.verify import verify
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.store import JobStore, output_name_for
from steadyvoice.settings import Settings

ROWS_PER_INSERT = 1_000


def make_jobs(settings: Settings, count: int, size: int) -> int:
    """``count`` succeeded jobs with distinct ``size``-byte outputs; returns the bytes written."""
    store = JobStore.from_url(settings.resolved_database_url, settings.data_dir)
    store.migrate()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows: list[dict[str, Any]] = []
    written = 0
    for i in range(count):
        job_id = hashlib.sha256(f"bench-{i}".encode()).hexdigest()[:32]
        created = start + timedelta(seconds=i)
        name = output_name_for(job_id, created, "wav")
        data = (job_id.encode() * (size // 32 + 1))[:size]
        path = settings.outputs_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written += size
        rows.append(
            {
                "id": job_id,
                "status": "succeeded",
                "text": f"Benchmark job {i}.",
                "voice": "joe",
                "engine": "fake",
                "engine_version": "fake-1+sr16000",
                "params": {"seed": 42, "format": "wav"},
                "requester": "bench",
                "request_hash": job_id * 2,
                "created_at": created,
                "finished_at": created,
                "deadline_at": created + timedelta(minutes=10),
                "attempts": 1,
                "output_name": name,
                "sample_rate": 16_000,
                "duration_seconds": 1.0,
                "sha256": hashlib.sha256(data).hexdigest(),
                "size_bytes": size,
            }
        )
        if len(rows) == ROWS_PER_INSERT or i == count - 1:
            with store.session() as s:
                s.execute(insert(Job), rows)
            rows = []
    store.engine.dispose()
    return written


def timed(label: str, results: dict[str, float], call: Any) -> Any:
    started = time.perf_counter()
    value = call()
    results[label] = round(time.perf_counter() - started, 3)
    print(f"{label}: {results[label]:.2f} s", flush=True)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=64 * 1024, help="bytes per output file")
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--database", help="an empty PostgreSQL database (default: SQLite)")
    parser.add_argument("--restore-database", help="a second empty one, the restore target")
    parser.add_argument("--dest", help="backup destination (default: a temp folder)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sv-bench-backup-"))
    try:
        source = Settings(data_dir=work / "source", database_url=args.database, engine="fake")
        target = Settings(
            data_dir=work / "restored", database_url=args.restore_database, engine="fake"
        )
        dest = open_destination(args.dest or str(work / "backup"), source)
        results: dict[str, float] = {}
        written = timed("setup_seconds", results, lambda: make_jobs(source, args.jobs, args.size))
        _, full = timed("create_seconds", results, lambda: create(source, dest, args.parallel))
        _, again = timed(
            "incremental_seconds", results, lambda: create(source, dest, args.parallel)
        )
        checked = timed("verify_seconds", results, lambda: verify(dest, None, args.parallel))
        timed("restore_seconds", results, lambda: restore(target, dest, None, args.parallel))
        assert full.healthy and full.copied == args.jobs and again.copied == 0 and checked.healthy
        seconds = results["create_seconds"]
        summary = {
            "jobs": args.jobs,
            "file_bytes": args.size,
            "total_mb": round(written / 1e6, 1),
            "database_mb": round(full.database_bytes / 1e6, 1),
            "parallel": args.parallel,
            "destination": "s3" if str(args.dest or "").startswith("s3://") else "local",
            "database": "postgresql" if args.database else "sqlite",
            "create_files_per_s": round(args.jobs / seconds),
            "create_mb_per_s": round(written / 1e6 / seconds, 1),
            "verify_mb_per_s": round(written / 1e6 / results["verify_seconds"], 1),
            "cpus": os.cpu_count(),
            **results,
        }
        print(json.dumps(summary, indent=1))
        if args.json:
            args.json.write_text(json.dumps(summary, indent=1) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
