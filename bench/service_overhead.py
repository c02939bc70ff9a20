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
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(check: Any, timeout: float, every: float = 0.002) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError("benchmark wait timed out")


class Run:
    def __init__(self, workers: int, engine: str = "fake") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="svbench-"))
        port = _port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYVOICE_")}
        env |= {
            "STEADYVOICE_DATA_DIR": str(self.dir),
            "STEADYVOICE_ENGINE": engine,
            "STEADYVOICE_WORKERS": str(workers),
            "STEADYVOICE_API__PORT": str(port),
            "STEADYVOICE_LOG_LEVEL": "WARNING",
            # Limits would throttle the load generator; their cost (a key check and a
            # rate-window write per request) is still paid and measured.
            "STEADYVOICE_SECURITY__RATE_PER_MINUTE": "1000000",
            "STEADYVOICE_SECURITY__MAX_IN_FLIGHT": "1000000",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "steadyvoice", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        _wait(self._ready(workers), 60)
        key = (self.dir / "admin.key").read_text().strip()
        self.http.headers["Authorization"] = f"Bearer {key}"

    def _ready(self, workers: int) -> Any:
        def check() -> bool:
            try:
                r = self.http.get("/readyz")
            except httpx.TransportError:
                return False
            return r.status_code == 200 and r.json()["workers"] >= workers

        return check

    def submit(self, text: str) -> str:
        r = self.http.post("/v1/jobs", json={"text": text})
        r.raise_for_status()
        return str(r.json()["id"])

    def job(self, job_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self.http.get(f"/v1/jobs/{job_id}").json()
        return body

    def close(self) -> None:
        self.http.close()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def sequential_latency(jobs: int) -> dict[str, float]:
    run = Run(workers=1)
    client_ms: list[float] = []
    record_ms: list[float] = []
    try:
        for i in range(5):  # warm-up
            jid = run.submit(f"warm up {i}.")
            _wait(lambda jid=jid: run.job(jid)["status"] == "succeeded", 30)
        for i in range(jobs):
            start = time.perf_counter()
            jid = run.submit(f"Overhead probe number {i}.")
            job = _wait(lambda jid=jid: (j := run.job(jid))["status"] == "succeeded" and j, 30)
            client_ms.append((time.perf_counter() - start) * 1000)
            record_ms.append((_ts(job["finished_at"]) - _ts(job["created_at"])) * 1000)
    finally:
        run.close()
    return {
        "client_p50": statistics.median(client_ms),
        "client_p99": _pct(client_ms, 0.99),
        "record_p50": statistics.median(record_ms),
        "record_p99": _pct(record_ms, 0.99),
    }


def burst_throughput(workers: int, burst: int, engine: str = "fake") -> float:
    run = Run(workers=workers, engine=engine)
    try:
        ids = [run.submit(f"Burst job number {i} reads one short sentence.") for i in range(burst)]
        last = ids[-1]
        _wait(lambda: run.job(last)["status"] == "succeeded", 300, every=0.25)
        jobs = run.http.get("/v1/jobs", params={"limit": 500}).json()["items"]
        assert len(jobs) == burst and all(j["status"] == "succeeded" for j in jobs)
        first = min(_ts(j["created_at"]) for j in jobs)
        done = max(_ts(j["finished_at"]) for j in jobs)
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
