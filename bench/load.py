"""Open-loop load: latency and refusals at 50-200 % of capacity, against a real ``serve``.

First the capacity (jobs/s) is measured: a closed loop keeps ``4 x workers`` jobs in flight for
``--capacity-seconds`` and counts completions after a warm-up. Then, for each level of
``--levels`` (percent of capacity), Poisson arrivals at that rate for ``--seconds``, each sent
on schedule whatever the service answers (bench/loadgen.py). Per level it reports accepted and
refused requests (by status and code), failed and unfinished jobs, the end-to-end latency of
accepted jobs from the job records (``created_at -> finished_at``) and as the client saw it
(scheduled send -> the client saw the job end), the queue wait (``created_at -> started_at``)
and whether the latency objective (``slo.latency_target_seconds``, P99) held.

Targets (client view): at 80 % P99 <= 2 x P50; at 120 % and 200 % the service refuses the
excess (503 refusals, and accepted jobs/s in the level's second half, once the queue has
filled, at most 1.15 x capacity) and the accepted jobs' P99 is at most 2 x the 80 % P99.

    python bench/load.py --engine fake --fake-seconds 0.2 --workers 2 --seconds 60 --json load.json
    python bench/load.py --engine piper --workers 2 --seconds 60 --json load-piper.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import loadgen
import loadstats
from harness import Service

REFUSE_SLACK = 1.15  # accepted jobs/s may exceed the measured capacity this much
LATENCY_RATIO = 2.0


def arguments() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    loadgen.add_service_arguments(p)
    p.add_argument("--capacity", type=float, help="jobs/s; skip measuring it")
    p.add_argument("--capacity-seconds", type=float, default=30.0)
    p.add_argument("--levels", default="50,80,100,120,200", help="percent of capacity")
    p.add_argument("--seconds", type=float, default=60.0, help="length of each level")
    p.add_argument("--json", type=Path, help="write the full result here")
    return p.parse_args()


def _p(level: dict[str, Any] | None, view: str, q: str) -> float | None:
    if level is None or level[view] is None:
        return None
    value: float = level[view][q]
    return value


def targets(levels: list[dict[str, Any]], capacity: float) -> list[dict[str, Any]]:
    """The issue's targets, each with its measured value, limit and verdict (client view)."""
    at = {lv["level_pct"]: lv for lv in levels}
    out: list[dict[str, Any]] = []
    p50, p99 = _p(at.get(80), "client", "p50"), _p(at.get(80), "client", "p99")
    if p50 is not None and p99 is not None:
        limit = LATENCY_RATIO * p50
        out.append(_target("80 %: P99 <= 2 x P50", p99, limit))
    for pct in (120, 200):
        lv = at.get(pct)
        if lv is None:
            continue
        refused = sum(n for code, n in lv["refused"].items() if code.startswith("503"))
        late = lv["accepted_per_second_late"]
        ceiling = REFUSE_SLACK * capacity
        out.append(
            _target(f"{pct} %: refuses the excess (accepted/s, 2nd half)", late, ceiling)
            | {"pass": refused > 0 and late <= ceiling, "refused_503": refused}
        )
        mine = _p(lv, "client", "p99")
        if p99 is not None and mine is not None:
            out.append(_target(f"{pct} %: P99 <= 2 x P99 at 80 %", mine, LATENCY_RATIO * p99))
    return out


def _target(name: str, value: float, limit: float) -> dict[str, Any]:
    return {"target": name, "value": value, "limit": limit, "pass": value <= limit}


def _fmt(summary: dict[str, float] | None) -> str:
    if summary is None:
        return "-"
    return "/".join(f"{summary[q]:.2f}" for q in ("p50", "p95", "p99", "max"))


def print_report(result: dict[str, Any]) -> None:
    cap = result["capacity"]
    print(f"\nmachine: {result['machine']}")
    print(
        f"engine {result['engine']}, {result['workers']} worker(s); capacity "
        f"{cap['jobs_per_second']:.2f} jobs/s; latency objective P99 <= "
        f"{result['slo_target_seconds']:g} s\n"
    )
    print(
        "| level | offered/s | accepted | refused | failed/unfinished | record P50/P95/P99/max s "
        "| client P50/P95/P99/max s | queue wait P50/P95/P99/max s | SLO held |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for lv in result["levels"]:
        refused = ", ".join(f"{n} {code}" for code, n in sorted(lv["refused"].items())) or "0"
        failed = sum(lv["failed"].values())
        print(
            f"| {lv['level_pct']} % | {lv['offered'] / lv['seconds']:.2f} | {lv['accepted']} "
            f"| {refused} | {failed}/{lv['unfinished']} | {_fmt(lv['record'])} "
            f"| {_fmt(lv['client'])} | {_fmt(lv['queue_wait'])} "
            f"| {'yes' if lv['slo']['held'] else 'no'} |"
        )
    print()
    for t in result["targets"]:
        verdict = "PASS" if t["pass"] else "FAIL"
        print(f"{verdict}  {t['target']}: {t['value']:.3f} (limit {t['limit']:.3f})")


async def measure(svc: Service, args: argparse.Namespace, slo: float) -> dict[str, Any]:
    async with loadgen.client(svc) as http:
        watcher = loadgen.Watcher(http, every=args.poll)
        try:
            if args.capacity is not None:
                capacity = {"jobs_per_second": args.capacity, "measured": False}
            else:
                clients = 4 * max(1, args.workers)
                cap = await loadgen.saturate(http, watcher, clients, args.capacity_seconds)
                capacity = {"measured": True, "clients": clients} | vars(cap)
            levels = []
            for pct in (int(x) for x in args.levels.split(",")):
                rate = capacity["jobs_per_second"] * pct / 100
                arrivals = await loadgen.open_loop(
                    http, watcher, rate, args.seconds, seed=args.seed * 1000 + pct
                )
                levels.append(
                    loadstats.summarize(arrivals, args.seconds, slo)
                    | {"level_pct": pct, "rate": rate}
                )
                print(f"level {pct} %: {rate:.2f}/s, {len(arrivals)} sent", flush=True)
        finally:
            await watcher.close()
    return {"capacity": capacity, "levels": levels, "watcher_requests": watcher.requests}


def main() -> None:
    args = arguments()
    result = loadstats.run_measured(args, measure)
    result["seconds_per_level"] = args.seconds
    result["targets"] = targets(result["levels"], result["capacity"]["jobs_per_second"])
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
