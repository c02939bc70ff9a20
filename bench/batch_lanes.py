"""Interactive latency while a batch runs, and batch throughput (issue 17, Benchmark).

A real ``serve`` (piper by default, 2 workers). Three phases on the same service:

* ``alone``: ``--probes`` interactive calls, one at a time ``--gap`` seconds apart:
  ``POST /v1/audio/speech`` (a short reply, answered with the audio), timed end to end.
* ``batch``: a ``--items`` batch (``POST /v1/batches``) is queued, and the same probes run
  while it does. Interactive jobs are claimed before batch items, so a probe waits at most for a
  running item to finish. Target: P99 with the batch <= 1.5 x P99 alone. The batch's own
  throughput (items a second, from its acceptance to its last item) is recorded too.
* ``singles``: the same items as single ``POST /v1/jobs`` submits (a script doing it by hand,
  retrying after ``Retry-After`` when admission refuses), and their throughput.

``--batch-max-running 1`` (``batch.max_running``) keeps one of the 2 workers for interactive
jobs: a probe then never waits for a batch item, at the cost of half the batch throughput.

Prints one JSON object. The probe's and the batch's figures depend on the machine: run it on a
quiet one. Small run to check it works: ``python bench/batch_lanes.py --items 40 --probes 10``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from typing import Any

import httpx
from harness import Service, percentile, wait_for

PROBE_TEXT = "Thank you for calling. Your balance is ready."
# Batch items like a lesson's or a statement's lines: a sentence or two each.
LINES = (
    "The river rises in the hills and runs to the sea past the old mill.",
    "Your statement for this month shows three payments and one transfer.",
    "Repeat after me: the weather today is cold, but tomorrow will be warmer.",
    "Please keep this letter with your records; no action is needed.",
    "In the second lesson we practise greetings, numbers and the days of the week.",
)


def items(count: int) -> list[dict[str, Any]]:
    return [{"text": f"{LINES[i % len(LINES)]} Line {i + 1}.", "seed": i} for i in range(count)]


def probe_once(http: httpx.Client) -> float | None:
    """Seconds to the audio; None if admission refused the call (503 ``overloaded``)."""
    started = time.perf_counter()
    r = http.post(
        "/v1/audio/speech",
        json={"model": "tts-1", "input": PROBE_TEXT, "voice": "alloy", "response_format": "wav"},
        timeout=120,
    )
    if r.status_code == 503 and r.json()["error"]["code"] == "overloaded":
        return None
    if r.status_code != 200:
        raise RuntimeError(f"probe refused: {r.status_code} {r.text[:300]}")
    return time.perf_counter() - started


def probes(
    http: httpx.Client, count: int, gap: float, stop: threading.Event | None = None
) -> list[float | None]:
    """``count`` interactive calls, one at a time (fewer if ``stop`` is set first)."""
    seconds = []
    for _ in range(count):
        if stop is not None and stop.is_set():
            break
        seconds.append(probe_once(http))
        time.sleep(gap)
    return seconds


def summary(results: list[float | None]) -> dict[str, Any]:
    seconds = [s for s in results if s is not None]
    refused = len(results) - len(seconds)
    if not seconds:
        return {"n": 0, "refused": refused}
    return {
        "n": len(seconds),
        "refused": refused,
        "p50_ms": round(percentile(seconds, 0.5) * 1000, 1),
        "p99_ms": round(percentile(seconds, 0.99) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
    }


def batch_phase(svc: Service, count: int, probe_count: int, gap: float) -> dict[str, Any]:
    started = time.perf_counter()
    r = svc.http.post("/v1/batches", json={"items": items(count)}, timeout=300)
    r.raise_for_status()
    batch_id = r.json()["id"]
    accepted = time.perf_counter() - started
    done = threading.Event()
    finished_at: list[float] = []

    def watch() -> None:
        own = httpx.Client(base_url=svc.http.base_url, headers=svc.http.headers, timeout=30)

        def finished() -> bool:
            status = own.get(f"/v1/batches/{batch_id}").json()["status"]
            return status in ("done", "canceled")

        with own:
            wait_for(finished, timeout=24 * 3600, every=0.5, what="the batch to finish")
        finished_at.append(time.perf_counter())
        done.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    latencies = probes(svc.http, probe_count, gap, stop=done)
    watcher.join()
    elapsed = finished_at[0] - started
    final = svc.http.get(f"/v1/batches/{batch_id}").json()
    return {
        "probe": summary(latencies),
        "probes_ran_while_batch_ran": len(latencies),
        "batch_accept_seconds": round(accepted, 2),
        "batch_seconds": round(elapsed, 2),
        "batch_items_per_second": round(count / elapsed, 2),
        "batch_counts": final.get("counts"),
    }


def singles_phase(svc: Service, count: int) -> dict[str, Any]:
    started = time.perf_counter()
    refused = 0
    for item in items(count):
        while True:
            r = svc.post_job(item["text"], seed=item["seed"])
            if r.status_code != 503:
                r.raise_for_status()
                break
            refused += 1
            time.sleep(float(r.headers.get("Retry-After", "1")))

    def drained() -> bool:
        return not any(
            svc.http.get("/v1/jobs", params={"status": s, "limit": 1}).json()["items"]
            for s in ("queued", "running")
        )

    wait_for(drained, timeout=24 * 3600, every=0.5, what="the single jobs to finish")
    elapsed = time.perf_counter() - started
    return {
        "seconds": round(elapsed, 2),
        "items_per_second": round(count / elapsed, 2),
        "refused_then_retried": refused,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", default="piper")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--gap", type=float, default=0.2, help="seconds between probes")
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument(
        "--batch-max-running",
        type=int,
        default=0,
        help="batch.max_running (0: no cap; workers - 1 keeps a worker for interactive jobs)",
    )
    args = parser.parse_args()

    env = {
        "BATCH__MAX_ITEMS": str(max(args.items, 1)),
        "BATCH__MAX_RUNNING": str(args.batch_max_running),
        "WORKER__SPARES": "0",
    }
    with Service(workers=args.workers, engine=args.engine, postgres=args.postgres, env=env) as svc:
        svc.use_admin_key()
        probe_once(svc.http)  # warm: the first call loads what the rest reuse
        alone = summary(probes(svc.http, args.probes, args.gap))
        with_batch = batch_phase(svc, args.items, args.probes, args.gap)
        singles = singles_phase(svc, args.items)
    ratio = None
    if alone.get("p99_ms") and with_batch["probe"].get("p99_ms"):
        ratio = round(with_batch["probe"]["p99_ms"] / alone["p99_ms"], 2)
    print(
        json.dumps(
            {
                "engine": args.engine,
                "workers": args.workers,
                "items": args.items,
                "batch_max_running": args.batch_max_running,
                "interactive_alone": alone,
                "with_batch": with_batch,
                "p99_with_batch_over_alone": ratio,
                "target_ratio": 1.5,
                "singles": singles,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
