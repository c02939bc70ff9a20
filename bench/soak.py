"""Soak: constant open-loop load for a long time, and the resource trends of every process.

Poisson arrivals (bench/loadgen.py) at ``--load-pct`` (default 70) % of the capacity measured
first, or at ``--rate`` jobs/s, for ``--minutes``. Every ``--every`` seconds it samples, from
``/proc``, the resident memory (``VmRSS``), open file descriptors (``fd/``) and threads
(``Threads``) of the API (the ``serve`` process) and of each worker, taking worker pids afresh
at each sample, so recycled or restarted workers are followed (their pid changes are counted).
Workers are reported as the mean per live worker.

After the warm-up (``--warmup``, a fraction of the samples), a least-squares line through each
series gives the slope per hour and the growth from the fitted start to the fitted end.
Targets: RSS growth < 5 % (API and workers); descriptors and threads do not grow (fitted rise
at most max(1, 5 % of the start)).

    python bench/soak.py --engine piper --workers 2 --minutes 30 --json soak.json --csv soak.csv
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import time
from pathlib import Path
from typing import Any

import loadgen
import loadstats
from harness import Service

RSS_GROWTH_PCT = 5.0
FLAT_FRACTION = 0.05
METRICS = ("rss_mb", "fds", "threads")


def arguments() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    loadgen.add_service_arguments(p)
    p.add_argument("--rate", type=float, help="jobs/s; skip measuring capacity")
    p.add_argument("--load-pct", type=float, default=70.0, help="percent of measured capacity")
    p.add_argument("--capacity-seconds", type=float, default=30.0)
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    p.add_argument("--warmup", type=float, default=0.2, help="fraction of samples left out")
    p.add_argument("--json", type=Path, help="write the full result here")
    p.add_argument("--csv", type=Path, help="write every sample here")
    return p.parse_args()


def process_sample(pid: int) -> dict[str, float] | None:
    """RSS (MiB), open descriptors and threads of ``pid``; None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss_kb = int(fields["VmRSS"].split()[0]) if "VmRSS" in fields else 0
    return {"rss_mb": rss_kb / 1024, "fds": fds, "threads": int(fields["Threads"])}


def sample(svc: Service, start: float) -> list[dict[str, Any]]:
    """One row per process (API, then each worker) at this moment."""
    rows = []
    at = round(time.monotonic() - start, 3)
    for role, pid in [("api", svc.pid)] + [("worker", p) for p in svc.worker_pids()]:
        values = process_sample(pid)
        if values is not None:
            rows.append({"t": at, "role": role, "pid": pid} | values)
    return rows


async def sampler(svc: Service, every: float, rows: list[dict[str, Any]]) -> None:
    start = time.monotonic()
    while True:
        rows.extend(sample(svc, start))
        await asyncio.sleep(every)


def series(rows: list[dict[str, Any]], role: str, metric: str) -> tuple[list[float], list[float]]:
    """(times, values) of one role; workers as the mean over the workers sampled at a time."""
    by_time: dict[float, list[float]] = {}
    for row in rows:
        if row["role"] == role:
            by_time.setdefault(row["t"], []).append(float(row[metric]))
    times = sorted(by_time)
    return times, [sum(by_time[t]) / len(by_time[t]) for t in times]


def trends(rows: list[dict[str, Any]], warmup: float) -> dict[str, dict[str, Any]]:
    """Per role and metric, the least-squares trend of the samples after the warm-up."""
    out: dict[str, dict[str, Any]] = {}
    for role in ("api", "worker"):
        out[role] = {}
        for metric in METRICS:
            times, values = series(rows, role, metric)
            skip = int(len(times) * warmup)
            out[role][metric] = loadstats.trend(times[skip:], values[skip:])
    return out


def targets(found: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """RSS growth under 5 %, descriptors and threads flat, for the API and the workers."""
    out = []
    for role, metrics in found.items():
        rss = metrics["rss_mb"]
        if rss is not None:
            out.append(_target(f"{role}: RSS growth %", rss["growth_pct"], RSS_GROWTH_PCT))
        for metric in ("fds", "threads"):
            t = metrics[metric]
            if t is not None:
                limit = max(1.0, FLAT_FRACTION * t["fit_start"])
                out.append(_target(f"{role}: {metric} fitted rise", t["rise"], limit))
    return out


def _target(name: str, value: float, limit: float) -> dict[str, Any]:
    return {"target": name, "value": value, "limit": limit, "pass": value < limit}


async def soak(svc: Service, args: argparse.Namespace, slo: float) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    async with loadgen.client(svc) as http:
        watcher = loadgen.Watcher(http, every=args.poll)
        try:
            rate = args.rate
            if rate is None:
                clients = 4 * max(1, args.workers)
                cap = await loadgen.saturate(http, watcher, clients, args.capacity_seconds)
                rate = cap.jobs_per_second * args.load_pct / 100
            print(f"soak at {rate:.2f} jobs/s for {args.minutes:g} min", flush=True)
            task = asyncio.create_task(sampler(svc, args.every, rows))
            seconds = args.minutes * 60
            arrivals = await loadgen.open_loop(http, watcher, rate, seconds, seed=args.seed)
            task.cancel()
        finally:
            await watcher.close()
    worker_pids = sorted({r["pid"] for r in rows if r["role"] == "worker"})
    return {
        "rate": rate,
        "load": loadstats.summarize(arrivals, seconds, slo),
        "samples": rows,
        "worker_pids_seen": worker_pids,
        "trends": trends(rows, args.warmup),
    }


def print_report(result: dict[str, Any]) -> None:
    load = result["load"]
    print(f"\nmachine: {result['machine']}")
    print(
        f"engine {result['engine']}, {result['workers']} worker(s), {result['rate']:.2f} jobs/s "
        f"for {result['minutes']:g} min: {load['accepted']} accepted, "
        f"{load['succeeded']} succeeded, refused {load['refused'] or 0}; "
        f"{len(result['worker_pids_seen'])} worker pid(s) seen\n"
    )
    print("| process | metric | start (fit) | end (fit) | growth | slope per hour | max |")
    print("|---|---|---|---|---|---|---|")
    for role, metrics in result["trends"].items():
        for metric, t in metrics.items():
            if t is None:
                print(f"| {role} | {metric} | - | - | - | - | - |")
                continue
            print(
                f"| {role} | {metric} | {t['fit_start']:.1f} | {t['fit_end']:.1f} "
                f"| {t['growth_pct']:+.2f} % | {t['slope_per_hour']:+.2f} | {t['max']:.1f} |"
            )
    print()
    for t in result["targets"]:
        verdict = "PASS" if t["pass"] else "FAIL"
        print(f"{verdict}  {t['target']}: {t['value']:.3f} (limit < {t['limit']:.3f})")


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["t", "role", "pid", *METRICS])
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    args = arguments()
    result = loadstats.run_measured(args, soak)
    result |= {
        "minutes": args.minutes,
        "every": args.every,
        "warmup": args.warmup,
    }
    result["targets"] = targets(result["trends"])
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.csv:
        write_csv(args.csv, result["samples"])


if __name__ == "__main__":
    main()
