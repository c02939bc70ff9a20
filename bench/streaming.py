"""Streaming speech: time to first audio and total time for 1, 4 and 8 concurrent clients.

Starts ``steadyvoice serve`` with the Piper engine (SQLite, local workers) and has N clients at
once each stream a four-sentence text from ``POST /v1/audio/speech`` (``stream: true``,
``response_format: pcm``), several rounds each. Reports the median and P95 over every request.

    python bench/streaming.py [--workers 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from engine_rtf import cpu_model
from service_overhead import Run, _pct

TEXT = (
    "Good morning, this is your account summary for November. "
    "Your current balance is one thousand two hundred and forty pounds. "
    "Two payments are due before the end of the month. "
    "Thank you for banking with us, and have a pleasant day."
)


def one_stream(run: Run, seed: int) -> tuple[float, float, int]:
    """(seconds to the first audio byte, seconds to the last, bytes) for one request."""
    body = {
        "model": "tts-1",
        "input": TEXT,
        "voice": "alloy",
        "response_format": "pcm",
        "stream": True,
        "seed": seed,
    }
    started = time.perf_counter()
    first = 0.0
    size = 0
    with run.http.stream("POST", "/v1/audio/speech", json=body, timeout=300) as r:
        r.raise_for_status()
        for data in r.iter_bytes():
            if data and not first:
                first = time.perf_counter() - started
            size += len(data)
    return first, time.perf_counter() - started, size


def measure(run: Run, clients: int, rounds: int) -> dict[str, float]:
    ttfa: list[float] = []
    total: list[float] = []
    with ThreadPoolExecutor(max_workers=clients) as pool:
        for r in range(rounds):
            seeds = [1000 * clients + 10 * r + c for c in range(clients)]
            for first, whole, size in pool.map(lambda s: one_stream(run, s), seeds):
                assert size > 0
                ttfa.append(first)
                total.append(whole)
    return {
        "ttfa_p50": statistics.median(ttfa),
        "ttfa_p95": _pct(ttfa, 0.95),
        "total_p50": statistics.median(total),
        "total_p95": _pct(total, 0.95),
        "requests": len(ttfa),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    run = Run(workers=args.workers, engine="piper")
    try:
        one_stream(run, 1)  # warm-up: first synthesis, first encoder
        results = {n: measure(run, n, args.rounds) for n in (1, 4, 8)}
    finally:
        run.close()
    print(
        f"machine: {os.cpu_count()} cores, {cpu_model()}; piper, {args.workers} local "
        f"worker(s), SQLite; {len(TEXT)}-character, four-sentence text, pcm\n"
    )
    print("| clients | requests | first audio P50 | first audio P95 | total P50 | total P95 |")
    print("|---|---|---|---|---|---|")
    for n, r in results.items():
        print(
            f"| {n} | {r['requests']:.0f} | {r['ttfa_p50']:.2f} s | {r['ttfa_p95']:.2f} s | "
            f"{r['total_p50']:.2f} s | {r['total_p95']:.2f} s |"
        )


if __name__ == "__main__":
    main()
