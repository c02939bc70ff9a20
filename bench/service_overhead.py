"""The service's own overhead and throughput, measured with the instant ``fake`` engine.

Starts ``steadyvoice serve`` as a user would (SQLite, local workers) and reports:
- submit -> succeeded latency, sequential, one job at a time (client view and record view);
- jobs/s with 1 and 2 workers for a burst of jobs submitted at once.

    python bench/service_overhead.py [--jobs 200] [--burst 400]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

from harness import Service, percentile, timestamp, wait_for


def sequential_latency(jobs: int) -> dict[str, float]:
    run = Service(workers=1)
    client_ms: list[float] = []
    record_ms: list[float] = []
    try:
        for i in range(5):  # warm-up
            jid = run.submit(f"warm up {i}.")
            wait_for(lambda jid=jid: run.job(jid)["status"] == "succeeded", 30)
        for i in range(jobs):
            start = time.perf_counter()
            jid = run.submit(f"Overhead probe number {i}.")
            job = wait_for(lambda jid=jid: (j := run.job(jid))["status"] == "succeeded" and j, 30)
            client_ms.append((time.perf_counter() - start) * 1000)
            record_ms.append((timestamp(job["finished_at"]) - timestamp(job["created_at"])) * 1000)
    finally:
        run.close()
    return {
        "client_p50": statistics.median(client_ms),
        "client_p99": percentile(client_ms, 0.99),
        "record_p50": statistics.median(record_ms),
        "record_p99": percentile(record_ms, 0.99),
    }


def burst_throughput(workers: int, burst: int, engine: str = "fake") -> float:
    run = Service(workers=workers, engine=engine)
    try:
        ids = [run.submit(f"Burst job number {i} reads one short sentence.") for i in range(burst)]
        wait_for(lambda: len(run.all_jobs(status="succeeded")) == len(ids), 300, every=0.25)
        jobs = run.all_jobs()
        assert len(jobs) == burst and all(j["status"] == "succeeded" for j in jobs)
        first = min(timestamp(j["created_at"]) for j in jobs)
        done = max(timestamp(j["finished_at"]) for j in jobs)
    finally:
        run.close()
    return burst / (done - first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--burst", type=int, default=400)
    parser.add_argument("--piper-burst", type=int, default=40)
    args = parser.parse_args()
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    lat = sequential_latency(args.jobs)
    tput = {w: burst_throughput(w, args.burst) for w in (1, 2)}
    piper = {w: burst_throughput(w, args.piper_burst, "piper") for w in (1, 2)}
    print(f"machine: {os.cpu_count()} cores, {cpu}; SQLite store, local workers\n")
    print("| measure | value |")
    print("|---|---|")
    print(
        f"| submit→succeeded, client view, P50 ({args.jobs} sequential jobs) | "
        f"{lat['client_p50']:.1f} ms |"
    )
    print(f"| submit→succeeded, client view, P99 | {lat['client_p99']:.1f} ms |")
    print(f"| created→finished, job record, P50 | {lat['record_p50']:.1f} ms |")
    print(f"| created→finished, job record, P99 | {lat['record_p99']:.1f} ms |")
    for w, rate in tput.items():
        print(
            f"| throughput, fake engine, {w} worker(s), burst of {args.burst} | {rate:.0f} jobs/s |"
        )
    for w, rate in piper.items():
        print(
            f"| throughput, piper engine (one ~3 s sentence per job), {w} worker(s), "
            f"burst of {args.piper_burst} | {rate:.1f} jobs/s |"
        )


if __name__ == "__main__":
    main()
