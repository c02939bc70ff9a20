"""Statistics of an open-loop run (bench/loadgen.py): counts, latency percentiles, the SLO."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import loadgen
from harness import Service, percentile, timestamp
from loadgen import ACCEPTED, TERMINAL, Arrival

Measure = Callable[[Service, argparse.Namespace, float], Awaitable[dict[str, Any]]]


def run_measured(args: argparse.Namespace, measure: Measure) -> dict[str, Any]:
    """Start ``serve`` as ``args`` say, run ``measure`` against it, and add what every
    result names (the machine, engine, workers and service settings)."""
    env = loadgen.service_env(args)
    slo = loadgen.slo_target(env)
    with loadgen.start_service(args, env) as svc:
        result = asyncio.run(measure(svc, args, slo))
    return result | {
        "machine": machine(),
        "engine": args.engine,
        "workers": args.workers,
        "service_env": env,
        "slo_target_seconds": slo,
    }


def machine() -> str:
    """Cores and CPU model, for the record."""
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        info = []
    model = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), "")
    return f"{os.cpu_count()} cores, {model or platform.machine()}"


def latency_summary(values: list[float]) -> dict[str, float] | None:
    """P50/P95/P99/max (and the count), or None for no values."""
    if not values:
        return None
    return {
        "p50": percentile(values, 0.50),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
        "max": max(values),
        "count": float(len(values)),
    }


def spans(jobs: list[dict[str, Any]], start: str, end: str) -> list[float]:
    """``job[end] - job[start]`` in seconds for each job that has both."""
    return [timestamp(j[end]) - timestamp(j[start]) for j in jobs if j.get(start) and j.get(end)]


def summarize(arrivals: list[Arrival], seconds: float, slo: float) -> dict[str, Any]:
    """What a run of ``seconds`` measured: counts, latencies, the latency objective, send lag."""
    accepted = [a for a in arrivals if a.outcome == ACCEPTED]
    jobs = [a.job for a in accepted if a.job is not None]
    done = [j for j in jobs if j["status"] == "succeeded"]
    record = spans(done, "created_at", "finished_at")
    within = sum(1 for s in record if s <= slo)
    late = sum(1 for a in accepted if a.scheduled >= seconds / 2)
    return {
        "seconds": seconds,
        "offered": len(arrivals),
        "accepted": len(accepted),
        "accepted_per_second": len(accepted) / seconds,
        # The second half only, once a queue has filled: its fill is not excess taken on.
        "accepted_per_second_late": late / (seconds / 2),
        "refused": dict(Counter(a.outcome for a in arrivals if a.outcome != ACCEPTED)),
        "succeeded": len(done),
        "failed": dict(Counter(j["error"]["code"] for j in jobs if j["status"] == "failed")),
        "unfinished": sum(1 for j in jobs if j["status"] not in TERMINAL),
        "record": latency_summary(record),
        "client": latency_summary(
            [a.client_seconds for a in accepted if a.client_seconds is not None]
        ),
        "queue_wait": latency_summary(spans(done, "created_at", "started_at")),
        "slo": {
            "target_seconds": slo,
            "within_fraction": within / len(record) if record else None,
            "held": bool(record) and within >= 0.99 * len(record),
        },
        "send_lag": latency_summary([a.lag for a in arrivals]),
    }


def trend(times: list[float], values: list[float]) -> dict[str, float] | None:
    """Least-squares line through (time, value): slope per hour, fitted start and end, growth."""
    if len(times) < 2 or len(set(times)) < 2:
        return None
    slope, intercept = statistics.linear_regression(times, values)
    start = intercept + slope * times[0]
    end = intercept + slope * times[-1]
    return {
        "slope_per_hour": slope * 3600,
        "fit_start": start,
        "fit_end": end,
        "rise": end - start,
        "growth_pct": (end - start) / start * 100 if start else 0.0,
        "first": values[0],
        "last": values[-1],
        "max": max(values),
        "samples": float(len(values)),
    }
