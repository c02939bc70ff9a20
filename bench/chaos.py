"""Chaos: jobs from concurrent clients while workers, the whole service and the database fail.

Starts a real ``steadyvoice serve`` (SQLite, or PostgreSQL behind a TCP proxy the harness
controls) and has ``--clients`` clients work through ``--jobs`` jobs, closed loop: each submits a
job with an ``Idempotency-Key``, retrying the same key after a transport error, a 5xx or a 429
until it is accepted, then polls it to the end and takes the next. Meanwhile:

- one worker is SIGKILLed every ``--kill-every`` seconds;
- a third of the way through, the whole ``serve`` process group is SIGKILLed (a power cut) and
  started again on the same data dir and database;
- half way, on PostgreSQL, every database connection is cut and new ones refused for
  ``--db-outage`` seconds;
- two thirds of the way, ``serve`` is restarted gracefully (SIGTERM, wait, start).

Then it waits for the queue to drain and audits: accepted, succeeded, failed (by code), lost
(accepted but not succeeded or failed), duplicate jobs (one key, two jobs), duplicate and
unrecorded output files, ``steadyvoice verify``, and every 5xx answer the clients saw. With
``--baseline`` (default) it first runs the same jobs without faults and compares wall times.

``--topology celery`` runs the same clients and audit on the Celery scale-out topology instead
(PostgreSQL, Redis, S3, ``--apis`` API processes, ``--workers`` Celery workers), where the broker
fails in place of the power cut: see bench/celery_chaos.py.

    python bench/chaos.py [--jobs 1000] [--clients 16] [--kill-every 5] [--database postgresql]
                          [--engine piper] [--json results.json]
    python bench/chaos.py --topology celery [--apis 2] [--workers 3] [--jobs 1000] ...

Exit status 1 when a correctness target fails (lost, duplicates, failed, 5xx, verify).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any

from faults import Faults
from harness import PostgresDatabase, Service
from tcp_proxy import TcpProxy
from workload import Tally, Workload, run_clients

PAD = 48  # every fake job's text has this many characters, so each takes the same time


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--jobs", type=int, default=1000)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--engine", choices=("fake", "piper"), default="fake")
    p.add_argument("--threads", type=int, help="piper threads per worker")
    p.add_argument("--job-seconds", type=float, default=0.15, help="fake engine time per job")
    p.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument(
        "--topology",
        choices=("embedded", "celery"),
        default="embedded",
        help="embedded: one serve with its workers; celery: PostgreSQL, Redis, S3, API\n"
        "processes and `steadyvoice worker --queues fake` processes, the fake engine\n"
        "(bench/celery_chaos.py)",
    )
    p.add_argument("--apis", type=int, default=2, help="API processes (celery topology)")
    p.add_argument("--kill-every", type=float, default=5.0, help="seconds between worker kills")
    p.add_argument("--db-outage", type=float, default=3.0, help="seconds the database is cut")
    p.add_argument("--poll", type=float, default=0.2, help="seconds between a client's polls")
    p.add_argument("--job-timeout", type=float, default=300.0, help="longest wait for one job")
    p.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra setting for serve, without the STEADYVOICE_ prefix",
    )
    p.add_argument("--keep", action="store_true", help="keep the data dir and serve.log")
    p.add_argument("--json", type=Path, help="write every figure here")
    args = p.parse_args(argv)
    if args.topology == "celery" and (args.engine != "fake" or args.database != "sqlite"):
        p.error("--topology celery runs the fake engine on PostgreSQL: no --engine, --database")
    if args.topology == "celery":
        args.database = "postgresql"  # what it runs on, as the JSON's settings say
    return args


def service_env(args: argparse.Namespace) -> dict[str, str]:
    env = {"LOG_LEVEL": "INFO"}
    if args.engine == "fake":
        env["FAKE__SECONDS_PER_CHAR"] = f"{args.job_seconds / PAD:.6f}"
    for item in args.env:
        name, _, value = item.partition("=")
        env[name.removeprefix("STEADYVOICE_")] = value
    return env


def run_once(args: argparse.Namespace, with_faults: bool) -> dict[str, Any]:
    """One full run on a fresh service; returns its figures."""
    celery = args.topology == "celery"
    database = PostgresDatabase() if celery or args.database == "postgresql" else None
    proxy = TcpProxy(database.host, database.port) if database else None
    try:
        url = database.url_via("127.0.0.1", proxy.port) if database and proxy else None
        service = start_service(args, url, database)
        try:
            return drive(args, service, proxy if with_faults else None, with_faults, database)
        finally:
            service.close()
    finally:
        if proxy:
            proxy.close()
        if database:
            database.close()


def start_service(
    args: argparse.Namespace, url: str | None, database: PostgresDatabase | None
) -> Any:
    """The system under test: one ``serve`` (embedded) or the Celery fleet (``celery_chaos``)."""
    if args.topology == "celery":
        from celery_chaos import Fleet

        assert url is not None and database is not None
        return Fleet(args.apis, args.workers, url, database.url, service_env(args), args.keep)
    return Service(
        args.workers,
        args.engine,
        threads=args.threads,
        database_url=url,
        env=service_env(args),
        keep=args.keep,
    )


def faults_for(args: argparse.Namespace) -> type[Faults]:
    """The faults of the topology: for Celery, broker ones instead of a power cut."""
    if args.topology == "celery":
        from celery_chaos import CeleryFaults

        return CeleryFaults
    return Faults


def drive(
    args: argparse.Namespace,
    service: Any,
    proxy: TcpProxy | None,
    with_faults: bool,
    database: PostgresDatabase | None,
) -> dict[str, Any]:
    workload = Workload(args.jobs, PAD, run_id=os.urandom(4).hex())
    tally = Tally()
    faults = faults_for(args)(service, tally, args.jobs, args.kill_every, proxy, args.db_outage)
    done = threading.Event()
    chaos = threading.Thread(target=faults.run, args=(done,), name="chaos")
    started = time.monotonic()
    if with_faults:
        chaos.start()
    try:
        entries = service.entry_points()
        run_clients(entries, workload, tally, args.clients, args.poll, args.job_timeout)
        wall = time.monotonic() - started
    finally:
        done.set()
        if with_faults:
            chaos.join()
    if faults.error:
        raise RuntimeError(f"a fault could not be applied: {faults.error}")
    result = audit(service, workload, tally, database)
    result["wall_seconds"] = round(wall, 2)
    result["log"] = str(service.log_path)
    jobs = result.pop("_jobs")
    if with_faults:
        faults.recovery(jobs)
        result["faults"] = faults.summary()
    return result


def audit(
    service: Any, workload: Workload, tally: Tally, database: PostgresDatabase | None
) -> dict[str, Any]:
    """What happened to every accepted job, on record and in storage, and what ``verify`` says."""
    service.wait_ready(timeout=120)
    jobs = {j["id"]: j for j in service.all_jobs()}
    service.stop()
    accepted = tally.accepted_ids()
    statuses = {jid: jobs[jid]["status"] if jid in jobs else "missing" for jid in accepted}
    failed: dict[str, int] = {}
    for jid, status in statuses.items():
        if status == "failed":
            code = (jobs[jid].get("error") or {}).get("code", "unknown")
            failed[code] = failed.get(code, 0) + 1
    lost = sorted(jid for jid, s in statuses.items() if s not in ("succeeded", "failed"))
    files = output_files(*service.stored_outputs(), jobs)
    verify = service.cli("verify", "--json", database_url=database.url if database else None)
    report = json.loads(verify.stdout) if verify.stdout.strip().startswith("{") else {}
    return {
        "accepted": len(accepted),
        "succeeded": sum(s == "succeeded" for s in statuses.values()),
        "failed": failed,
        "lost": len(lost),
        "lost_jobs": {jid: statuses[jid] for jid in lost},
        "jobs_recorded": len(jobs),
        "duplicate_jobs": workload.duplicate_jobs(jobs.values()),
        **files,
        "verify": {"exit": verify.returncode, "report": report, "stderr": verify.stderr[-2000:]},
        **tally.summary(),
        "_jobs": jobs,
    }


def output_files(names: list[str], temp: int, jobs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Output files per job in storage: more than one is a duplicate, none of a job's is
    unrecorded; ``temp``: the temp files partial writes left behind.

    Names are ``output_<time>_<first 12 characters of the job id>.<format>`` (under folders, or
    an object key's prefix); the job record holds the exact name.
    """
    recorded = {j["output"]["name"] for j in jobs.values() if j.get("output")}
    per_job: dict[str, list[str]] = {}
    for name in names:
        per_job.setdefault(Path(name).stem.rsplit("_", 1)[-1], []).append(name)
    return {
        "output_files": len(names),
        "duplicate_files": {k: v for k, v in per_job.items() if len(v) > 1},
        "unrecorded_files": [n for n in names if Path(n).name not in recorded],
        "temp_files": temp,
    }


def targets(chaos: dict[str, Any], baseline: dict[str, Any] | None) -> dict[str, bool | None]:
    """Each target of issue 12 item 2: met (True), missed (False), or not measured (None)."""
    ratio = chaos["wall_seconds"] / baseline["wall_seconds"] if baseline else None
    return {
        "lost_0": chaos["lost"] == 0,
        "duplicates_0": not (
            chaos["duplicate_jobs"] or chaos["duplicate_files"] or chaos["unrecorded_files"]
        ),
        "failed_0": not chaos["failed"],
        "5xx_0": chaos["http_5xx"] == 0,
        "verify_clean": chaos["verify"]["exit"] == 0,
        "wall_at_most_1.5x": None if ratio is None else ratio <= 1.5,
    }


def print_summary(result: dict[str, Any]) -> None:
    c, b = result["chaos"], result.get("baseline")
    s = result["settings"]
    print(f"machine: {result['machine']}")
    if s["topology"] == "celery":
        print_celery_faults(s, c["faults"])
    else:
        print_embedded_faults(s, c["faults"])
    print(
        f"accepted {c['accepted']}, succeeded {c['succeeded']}, failed {c['failed'] or 0}, "
        f"lost {c['lost']}"
    )
    print(
        f"duplicate jobs {len(c['duplicate_jobs'])}, duplicate files {len(c['duplicate_files'])}, "
        f"unrecorded files {len(c['unrecorded_files'])}, temp files left {c['temp_files']}"
    )
    v = c["verify"]["report"]
    print(
        f"verify: exit {c['verify']['exit']}, checked {v.get('checked')}, ok {v.get('ok')}, "
        f"missing {len(v.get('missing', []))}, corrupt {len(v.get('corrupt', []))}"
    )
    print(
        f"5xx seen while the API was up: {c['http_5xx']} {c['http_5xx_by_code'] or ''}; "
        f"during the database outage: {c['http_5xx_db_outage']} "
        f"{c['http_5xx_db_outage_by_code'] or ''}; transport errors {c['transport_errors']}, "
        f"429s {c['http_429']}"
    )
    if b:
        print(
            f"wall time: {c['wall_seconds']} s with faults, {b['wall_seconds']} s without "
            f"({c['wall_seconds'] / b['wall_seconds']:.2f}x)"
        )
    else:
        print(f"wall time: {c['wall_seconds']} s with faults (no baseline run)")
    for name, met in result["targets"].items():
        print(f"target {name}: {'-' if met is None else 'met' if met else 'MISSED'}")


def print_embedded_faults(s: dict[str, Any], f: dict[str, Any]) -> None:
    print(
        f"{s['jobs']} jobs, {s['clients']} clients, {s['engine']} engine, {s['workers']} workers, "
        f"{s['database']}; worker SIGKILL every {s['kill_every']} s, one power cut, "
        "one graceful restart" + (", one database outage" if s["database"] != "sqlite" else "")
    )
    cut, restart = f.get("power_cut", {}), f.get("graceful_restart", {})
    print(
        f"faults: {f['worker_kills']} worker kills; power cut: down {cut.get('down_s')} s, "
        f"first job done {cut.get('first_job_done_after_ready_s')} s after ready; "
        f"graceful restart: {restart.get('down_s')} s; database cut: {f.get('db_outage', '-')}"
    )


def print_celery_faults(s: dict[str, Any], f: dict[str, Any]) -> None:
    print(
        f"{s['jobs']} jobs, {s['clients']} clients, Celery topology: {s['apis']} APIs, "
        f"{s['workers']} workers (`worker --queues fake`), PostgreSQL, Redis, S3; SIGKILL every "
        f"{s['kill_every']} s (pool child, then whole worker, in turn), one Redis restart, one "
        "database outage, one graceful API restart, one Redis FLUSHALL"
    )
    print(
        f"faults: {f['worker_kills']} kills, replacement ready {f.get('replacement_ready_s')} s, "
        f"killed job done after {f.get('job_done_after_kill_s')} s; "
        f"API graceful restart {f.get('graceful_restart', {}).get('down_s')} s; "
        f"database cut: {f.get('db_outage', '-')}"
    )
    for name in ("redis_restart", "redis_flush"):
        e = f.get(name, {})
        print(
            f"{name}: {e.get('messages_lost')} messages lost, {e.get('jobs_held_up')} jobs held "
            f"up, started {e.get('held_up_start_after_s')} s after; first job done "
            f"{e.get('first_job_done_after_ready_s')} s after"
        )


def machine() -> str:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    return f"{os.cpu_count()} cores, {cpu}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    baseline = run_once(args, with_faults=False) if args.baseline else None
    chaos = run_once(args, with_faults=True)
    settings = {k: v for k, v in vars(args).items() if k != "json"}
    met = targets(chaos, baseline)
    result: dict[str, Any] = {
        "machine": machine(),
        "settings": settings,
        "baseline": baseline,
        "chaos": chaos,
        "targets": met,
    }
    print_summary(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    correctness = [v for k, v in met.items() if not k.startswith("wall")]
    return 0 if all(correctness) else 1


if __name__ == "__main__":
    sys.exit(main())
