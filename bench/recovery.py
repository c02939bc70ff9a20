"""Recovery after crashes, against a real ``steadyvoice serve`` (issue 12, targets in brackets).

(a) Worker SIGKILL: while one client keeps the workers busy, a serving worker is SIGKILLed every
    ``--interval`` seconds, once the service is back to full strength (its spares loaded again;
    ``--no-settle`` kills on schedule regardless, as bench/chaos.py does). For each kill: the
    supervisor's measured recovery (its exit seen -> the replacement reported ready: the
    ``worker.recovered`` event, the same number as ``steadyvoice_worker_recovery_seconds``) and,
    from outside, the kill -> that event. [replacement ready: median <= 1.5 s, max <= 3 s]
(b) Power cut: with jobs queued and running, SIGKILL the whole ``serve`` process group, start it
    again and time: start -> ready, ready -> first job completed, ready -> every job that was
    running at the cut completed (requeued at start, not after its lease). The lease is set to
    ``--lease`` seconds so that waiting for it would show. [first job within 5 s of ready]

    python bench/recovery.py                       # the recorded run: 20 kills, 3 power cuts
    python bench/recovery.py --kills 3 --cuts 1    # a quick check
    python bench/recovery.py --spares 0            # cold starts: no spare worker to promote

Prints a summary; ``--json PATH`` also writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness import Service, timestamp, wait_for

from steadyvoice.jobs.liveness import BUSY, READY, STANDBY, WorkerRegistry, parse_worker_id
from steadyvoice.jobs.store import JobStore
from steadyvoice.jobs.supervisor import spares_for
from steadyvoice.settings import Settings

TEXT = "The quick brown fox jumps over the lazy dog near the river bank."


def _events(svc: Service, name: str) -> list[dict[str, Any]]:
    found = []
    for line in svc.log_path.read_text(errors="replace").splitlines():
        if f'"{name}"' in line:
            with_event = json.loads(line)
            if with_event.get("event") == name:
                found.append(with_event)
    return found


def _service(args: argparse.Namespace, **env: str) -> Service:
    values = {"LOG_LEVEL": "INFO", "JOBS__LEASE_SECONDS": str(args.lease), **env}
    if args.spares is not None:
        values["WORKER__SPARES"] = str(args.spares)
    return Service(workers=args.workers, engine=args.engine, postgres=args.postgres, env=values)


def _store(svc: Service) -> JobStore:
    url = svc.database_url or f"sqlite:///{svc.dir / 'steadyvoice.db'}"
    return JobStore.from_url(url)


@contextmanager
def _busy(svc: Service) -> Iterator[None]:
    """One client submitting jobs back to back, so every worker has served work when killed."""
    stop = threading.Event()

    def loop() -> None:
        i = 0
        while not stop.is_set():
            try:
                job_id = svc.submit(f"{TEXT} Number {i}.")
                wait_for(lambda j=job_id: svc.job(j)["status"] != "queued", 60, every=0.02)
            except Exception:  # noqa: BLE001 - the API is up; a kill only delays a job
                time.sleep(0.1)
            i += 1

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=90)


def _settled(svc: Service, store: JobStore, args: argparse.Namespace) -> bool:
    """Back to full strength: every spare loaded and waiting (as before the previous kill)."""
    settings = Settings(engine=args.engine, workers=args.workers, worker={"spares": args.spares})
    live = WorkerRegistry(store).live(60)
    pids = set(svc.worker_pids())
    return sum(1 for w in live if w.state == STANDBY and w.pid in pids) >= spares_for(settings)


def _serving_pid(svc: Service, store: JobStore) -> int | None:
    """A worker that is ready or busy and has finished a job (a spare never is)."""
    live = WorkerRegistry(store).live(60)
    pids = set(svc.worker_pids())
    done = [w.pid for w in live if w.state in (READY, BUSY) and w.jobs_done and w.pid in pids]
    return done[0] if done else None


def _recovered(svc: Service, pid: int) -> dict[str, Any] | None:
    recovered = _events(svc, "worker.recovered")
    done = [e for e in recovered if parse_worker_id(e["worker_id"])[1] == pid]
    return done[0] if done else None


def worker_kills(args: argparse.Namespace) -> dict[str, Any]:
    svc = _service(args)
    store = _store(svc)
    supervisor: list[float] = []
    outside: list[float] = []
    restarts: list[str] = []
    try:
        with _busy(svc):
            for _ in range(args.kills):
                time.sleep(args.interval)
                if args.settle:
                    wait_for(lambda: _settled(svc, store, args), 300, 0.05, "spares loaded")
                pid = wait_for(lambda: _serving_pid(svc, store), 60, 0.02, "a serving worker")
                killed = time.time()
                svc.kill_worker(pid)
                event = wait_for(
                    lambda p=pid: _recovered(svc, p), 60, 0.02, f"the replacement of {pid}"
                )
                supervisor.append(float(event["seconds"]))
                outside.append(timestamp(event["time"]) - killed)
                restarts.append(str(event["restart"]))
                print(
                    f"  kill {len(supervisor)}: ready again in {supervisor[-1]:.3f} s "
                    f"(kill -> ready {outside[-1]:.3f} s, {restarts[-1]})",
                    flush=True,
                )
    finally:
        store.engine.dispose()
        svc.close()
    return {
        "kills": len(supervisor),
        "recovery_seconds": supervisor,
        "median_seconds": statistics.median(supervisor),
        "max_seconds": max(supervisor),
        "kill_to_ready_median_seconds": statistics.median(outside),
        "kill_to_ready_max_seconds": max(outside),
        "restarts": {kind: restarts.count(kind) for kind in sorted(set(restarts))},
        "target_met": statistics.median(supervisor) <= 1.5 and max(supervisor) <= 3.0,
    }


def _finished_after(svc: Service, since: float) -> list[dict[str, Any]]:
    return [
        j
        for j in svc.all_jobs("succeeded")
        if j["finished_at"] and timestamp(j["finished_at"]) > since
    ]


def _one_cut(svc: Service, args: argparse.Namespace) -> dict[str, float]:
    ids = [svc.submit(f"{TEXT} Cut job {i}.") for i in range(args.jobs)]
    running = wait_for(
        lambda: [j["id"] for j in svc.all_jobs("running")] or None, 60, 0.01, "a running job"
    )
    svc.power_cut()
    began = time.time()
    svc.start_again()
    ready = time.time()
    first = wait_for(lambda: _finished_after(svc, ready), 120, 0.01, "a job done after the cut")
    first_done = min(timestamp(j["finished_at"]) for j in first)
    interrupted = wait_for(
        lambda: (
            (js := [svc.job(i) for i in running])
            and all(j["status"] == "succeeded" for j in js)
            and js
        ),
        args.lease * 2,
        0.05,
        "the interrupted jobs",
    )
    wait_for(lambda: all(svc.job(i)["status"] == "succeeded" for i in ids), 600, 0.25, "all jobs")
    return {
        "start_to_ready_seconds": ready - began,
        "ready_to_first_job_seconds": first_done - ready,
        "ready_to_interrupted_done_seconds": max(timestamp(j["finished_at"]) for j in interrupted)
        - ready,
        "interrupted_jobs": len(interrupted),
    }


def power_cuts(args: argparse.Namespace) -> dict[str, Any]:
    svc = _service(args)
    cuts: list[dict[str, float]] = []
    try:
        for n in range(args.cuts):
            cuts.append(_one_cut(svc, args))
            c = cuts[-1]
            print(
                f"  cut {n + 1}: ready {c['start_to_ready_seconds']:.2f} s after start; first job "
                f"{c['ready_to_first_job_seconds']:.3f} s after ready; "
                f"{c['interrupted_jobs']:.0f} interrupted job(s) done "
                f"{c['ready_to_interrupted_done_seconds']:.3f} s after ready",
                flush=True,
            )
    finally:
        svc.close()
    first = [c["ready_to_first_job_seconds"] for c in cuts]
    interrupted = [c["ready_to_interrupted_done_seconds"] for c in cuts]
    return {
        "cuts": cuts,
        "ready_to_first_job_median_seconds": statistics.median(first),
        "ready_to_first_job_max_seconds": max(first),
        "ready_to_interrupted_done_max_seconds": max(interrupted),
        "lease_seconds": args.lease,
        "target_met": max(first) <= 5.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", default="piper")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--spares", type=int, help="spare workers (default: the service's)")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--interval", type=float, default=8.0, help="seconds between kills")
    parser.add_argument(
        "--no-settle",
        dest="settle",
        action="store_false",
        help="kill on schedule even while a spare is still loading (default: wait for it)",
    )
    parser.add_argument("--cuts", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=10, help="jobs queued before each cut")
    parser.add_argument("--lease", type=float, default=120.0, help="jobs.lease_seconds")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    result: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "engine": args.engine,
        "workers": args.workers,
        "spares": args.spares,
        "database": "postgresql" if args.postgres else "sqlite",
    }
    if args.kills:
        print(f"(a) {args.kills} worker SIGKILLs, one every {args.interval:g} s, {args.engine}")
        kills = result["worker_kill"] = worker_kills(args)
        print(
            f"    replacement ready: median {kills['median_seconds']:.3f} s, max "
            f"{kills['max_seconds']:.3f} s (target 1.5 / 3.0: "
            f"{'met' if kills['target_met'] else 'NOT met'}); kill -> ready median "
            f"{kills['kill_to_ready_median_seconds']:.3f} s; restarts {kills['restarts']}"
        )
    if args.cuts:
        print(f"(b) {args.cuts} power cut(s) with {args.jobs} jobs queued, lease {args.lease:g} s")
        cuts = result["power_cut"] = power_cuts(args)
        print(
            f"    first job after ready: median {cuts['ready_to_first_job_median_seconds']:.3f} s,"
            f" max {cuts['ready_to_first_job_max_seconds']:.3f} s (target 5: "
            f"{'met' if cuts['target_met'] else 'NOT met'}); interrupted jobs done within "
            f"{cuts['ready_to_interrupted_done_max_seconds']:.3f} s of ready"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
