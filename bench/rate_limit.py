"""Rate limiter cost per request on SQLite, by the ``synchronous`` level of its connections.

Calls ``RateLimiter.hit`` in-process on a fresh SQLite store (WAL, in a temp dir on the disk
under test: ``--dir``) for many keys, one commit each, as every API request does. Three limiters
run interleaved in rounds so drift hits them alike: ``OFF`` (what the limiter used before issue
14: no flush at all, unsafe for the job database), ``NORMAL`` (what it uses now: no flush per
commit, checkpoints synced) and ``FULL`` (the store's level: an fsync per commit). The commits
cross WAL auto-checkpoints, whose syncs ``NORMAL`` pays and ``OFF`` does not.

    python bench/rate_limit.py [--calls 3000] [--rounds 5] [--dir /var/tmp] [--json out.json]

Run it on a quiet machine: on a shared one, the spread swamps the difference.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event

from steadyvoice.jobs.store import JobStore
from steadyvoice.security.ratelimit import RateLimiter

LEVELS = ("OFF", "NORMAL", "FULL")


def limiter_at(store: JobStore, level: str) -> RateLimiter:
    limiter = RateLimiter(store)

    def pragma(dbapi_conn: Any, _record: Any) -> None:  # after the limiter's own
        dbapi_conn.execute(f"PRAGMA synchronous={level}")

    event.listen(limiter._engine, "connect", pragma)  # the bench's one hook into it
    return limiter


def timed(limiter: RateLimiter, calls: int, offset: int) -> list[float]:
    out = []
    for i in range(calls):
        key = f"key_{(offset + i) % 500}"
        start = time.perf_counter_ns()
        limiter.hit(key, 1_000_000)
        out.append((time.perf_counter_ns() - start) / 1000)
    return out


def run(folder: Path, calls: int, rounds: int) -> dict[str, dict[str, float]]:
    samples: dict[str, list[float]] = {level: [] for level in LEVELS}
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        store = JobStore.from_url(f"sqlite:///{tmp}/bench.db")
        store.migrate()
        limiters = {level: limiter_at(store, level) for level in LEVELS}
        for limiter in limiters.values():
            timed(limiter, 50, 0)  # connect and warm up
        for r in range(rounds):
            for level in LEVELS:
                samples[level] += timed(limiters[level], calls // rounds, r * calls)
        for limiter in limiters.values():
            limiter.close()
        store.engine.dispose()
    return {
        level: {
            "p50_us": statistics.median(s),
            "p99_us": statistics.quantiles(s, n=100)[98],
            "mean_us": statistics.fmean(s),
        }
        for level, s in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="hits per level")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = run(args.dir, args.calls, args.rounds)
    for level, figures in result.items():
        print(
            f"synchronous={level:<6} P50 {figures['p50_us']:8.1f} µs  "
            f"P99 {figures['p99_us']:8.1f} µs  mean {figures['mean_us']:8.1f} µs"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
