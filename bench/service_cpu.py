"""The service's own CPU time per ``POST /v1/audio/speech``, API and workers apart.

Wall-clock latency on a shared machine moves with whatever else runs; the CPU time a process
spends on a request barely does. This starts ``steadyvoice serve`` (SQLite, local workers),
sends ``--requests`` sequential speech calls, not streamed (``wav``) and streamed (``pcm``), and
reads each process's CPU time (user + system, all threads, from ``/proc/<pid>/stat``) before
and after. What the processes burn while idle (periodic tasks, heartbeats), measured over
``--idle`` seconds first, is subtracted for the same wall time. With ``--engine fake`` (instant,
the default) everything left is the service itself; with ``--engine piper`` the worker figure
includes synthesis.

    python bench/service_cpu.py [--engine fake|piper] [--requests 200] [--workers 1]
                                [--idle 5] [--json out.json]

Small run to check that it works: ``--requests 20 --idle 2``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from harness import Service, child_pids

TICK = os.sysconf("SC_CLK_TCK")
TEXT = "The quick brown fox jumps over the lazy dog. Then it ran all the way home."


def cpu_seconds(pid: int, system: bool = False) -> float:
    """User (or system) CPU seconds of every thread of ``pid`` so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return int(fields[12 if system else 11]) / TICK


PARTS = ("api_user", "api_system", "workers_user", "workers_system")


@dataclass
class Reading:
    """CPU seconds (user, system) of the API (serve) process and of its worker processes."""

    api_user: float
    api_system: float
    workers_user: float
    workers_system: float
    wall: float

    def minus(self, other: Reading, idle: Reading | None = None) -> Reading:
        """CPU seconds spent between ``other`` and this reading, less ``idle``'s rate."""
        wall = self.wall - other.wall
        burn = {p: (getattr(idle, p) * wall if idle else 0.0) for p in PARTS}
        spent = {p: getattr(self, p) - getattr(other, p) - burn[p] for p in PARTS}
        return Reading(**spent, wall=wall)


def read(svc: Service) -> Reading:
    workers = child_pids(svc.pid)
    return Reading(
        api_user=cpu_seconds(svc.pid),
        api_system=cpu_seconds(svc.pid, system=True),
        workers_user=sum(cpu_seconds(p) for p in workers),
        workers_system=sum(cpu_seconds(p, system=True) for p in workers),
        wall=time.monotonic(),
    )


@dataclass
class Result:
    """CPU milliseconds per request (user + system, and system alone), idle burn subtracted."""

    mode: str
    requests: int
    api_ms: float
    api_system_ms: float
    workers_ms: float
    workers_system_ms: float
    total_ms: float
    wall_ms: float


def measure(svc: Service, mode: str, requests: int, idle: Reading | None) -> Result:
    body = {"model": "tts-1", "voice": "alloy", "input": TEXT}
    if mode == "stream":
        body |= {"stream": True, "response_format": "pcm"}
    else:
        body |= {"stream": False, "response_format": "wav"}
    before = read(svc)
    for i in range(requests):
        r = svc.http.post("/v1/audio/speech", json={**body, "seed": i})
        r.raise_for_status()
        assert r.content, "no audio"
    spent = read(svc).minus(before, idle)
    per = 1000 / requests
    api = spent.api_user + spent.api_system
    workers = spent.workers_user + spent.workers_system
    return Result(
        mode=mode,
        requests=requests,
        api_ms=round(api * per, 2),
        api_system_ms=round(spent.api_system * per, 2),
        workers_ms=round(workers * per, 2),
        workers_system_ms=round(spent.workers_system * per, 2),
        total_ms=round((api + workers) * per, 2),
        wall_ms=round(spent.wall * per, 2),
    )


def idle_rate(svc: Service, seconds: float) -> Reading:
    """CPU seconds per wall second that the processes spend with no request."""
    before = read(svc)
    time.sleep(seconds)
    spent = read(svc).minus(before)
    return Reading(**{p: getattr(spent, p) / spent.wall for p in PARTS}, wall=spent.wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="fake", choices=("fake", "piper"))
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds to measure idle burn")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: list[Result] = []
    with Service(workers=args.workers, engine=args.engine) as svc:
        for mode in ("whole", "stream"):
            measure(svc, mode, args.warmup, None)
        idle = idle_rate(svc, args.idle)
        for mode in ("whole", "stream"):
            results.append(measure(svc, mode, args.requests, idle))
    idle_api = (idle.api_user + idle.api_system) * 1000
    idle_workers = (idle.workers_user + idle.workers_system) * 1000
    print(
        f"{platform.node()}, {os.cpu_count()} CPUs; engine {args.engine}, {args.workers} "
        f"worker(s); idle burn API {idle_api:.1f} ms/s, workers {idle_workers:.1f} ms/s "
        "(subtracted)"
    )
    print("CPU ms per request (user + system; system alone in brackets), and wall ms:")
    print("| call | requests | API | workers | total | wall |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r.mode} | {r.requests} | {r.api_ms:.1f} ({r.api_system_ms:.1f}) | "
            f"{r.workers_ms:.1f} ({r.workers_system_ms:.1f}) | {r.total_ms:.1f} | "
            f"{r.wall_ms:.1f} |"
        )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
