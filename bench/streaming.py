"""Streaming speech: time to first audio, where it goes, and total time under concurrency.

Starts ``steadyvoice serve`` with the Piper engine (SQLite, local workers) and measures
``POST /v1/audio/speech`` with ``stream: true`` and ``response_format: pcm``:

1. **First audio, one client:** ``--first-requests`` calls, one at a time, of a text whose first
   sentence has 40 words (``LONG_FIRST``). Reports first-audio P50/P95 against the target
   (P50 <= 150 ms, P95 <= 250 ms) and the median of each stage on the way, from the client's
   send to its first byte: the job record (created, claimed) and the service's own
   ``job.first_chunk`` and ``speech.first_audio`` log events (serve runs at log level INFO).
2. **Concurrency:** N clients at once (``--clients``, default 1, 4, 8) each stream the
   four-sentence ``TEXT``, ``--rounds`` rounds each: first audio and total, median and P95.

    python bench/streaming.py [--workers 2] [--first-requests 40] [--rounds 3] [--json out.json]

Small run to check that it works: ``--first-requests 3 --rounds 1 --clients 1``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from engine_rtf import cpu_model
from harness import Service as Run
from harness import percentile as _pct
from harness import timestamp

TEXT = (
    "Good morning, this is your account summary for November. "
    "Your current balance is one thousand two hundred and forty pounds. "
    "Two payments are due before the end of the month. "
    "Thank you for banking with us, and have a pleasant day."
)
LONG_FIRST = (
    "The quarterly report from the northern regional office shows that customer numbers grew "
    "steadily through the spring and summer months while the average waiting time on the "
    "support line fell from nearly eleven minutes to just under four minutes again. "
    "The board will discuss the figures on Thursday. "
    "Please send any questions to the finance team before then."
)
TARGET_P50_MS = 150.0
TARGET_P95_MS = 250.0
# (name, what it covers) in order; each stage ends where the next one starts.
STAGES = (
    ("http_in", "client send -> API handler starts (connection, auth, body)"),
    ("submit", "handler -> job recorded (validation, normalization, insert)"),
    ("dispatch", "job recorded -> a worker claimed it"),
    ("synthesis", "claimed -> first chunk made (the leading clause)"),
    ("write", "first chunk made -> written to the store"),
    ("pickup", "written -> read by the API"),
    ("encode_send", "read -> first byte sent"),
    ("http_out", "sent -> first byte at the client"),
)


def one_stream(run: Run, seed: int, text: str = TEXT) -> dict[str, Any]:
    """One streamed request: first-byte and total seconds, bytes, the job id and wall times."""
    body = {
        "model": "tts-1",
        "input": text,
        "voice": "alloy",
        "response_format": "pcm",
        "stream": True,
        "seed": seed,
    }
    sent_at = time.time()
    started = time.perf_counter()
    first = 0.0
    size = 0
    with run.http.stream("POST", "/v1/audio/speech", json=body, timeout=300) as r:
        r.raise_for_status()
        job_id = r.headers["x-job-id"]
        for data in r.iter_bytes():
            if data and not first:
                first = time.perf_counter() - started
            size += len(data)
    return {
        "first": first,
        "total": time.perf_counter() - started,
        "bytes": size,
        "job_id": job_id,
        "sent_at": sent_at,
    }


def log_events(path: Path, names: set[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """The last of each ``names`` event per job in serve's JSON log: (event, job_id) -> line."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for line in path.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") in names and record.get("job_id"):
            found[(record["event"], record["job_id"])] = record
    return found


def stages(run: Run, calls: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Milliseconds of each stage (``STAGES``) for each call, from records and log events."""
    events = log_events(run.log_path, {"job.first_chunk", "speech.first_audio"})
    out: dict[str, list[float]] = {name: [] for name, _ in STAGES}
    for call in calls:
        job = run.job(call["job_id"])
        chunk = events.get(("job.first_chunk", call["job_id"]))
        api = events.get(("speech.first_audio", call["job_id"]))
        if chunk is None or api is None or not job.get("started_at"):
            continue
        api_start = timestamp(api["time"]) - api["sent_ms"] / 1000
        written = timestamp(chunk["time"])
        marks = [
            call["sent_at"],
            api_start,
            timestamp(job["created_at"]),
            timestamp(job["started_at"]),
            written - chunk["write_ms"] / 1000,
            written,
            api_start + api["read_ms"] / 1000,
            api_start + api["sent_ms"] / 1000,
            call["sent_at"] + call["first"],
        ]
        for (name, _), a, b in zip(STAGES, marks, marks[1:], strict=False):
            out[name].append((b - a) * 1000)
    return out


def first_audio(run: Run, requests: int) -> dict[str, Any]:
    """One client, one call at a time, ``LONG_FIRST``: first audio and its stages."""
    calls = [one_stream(run, 500 + i, LONG_FIRST) for i in range(requests)]
    ms = [c["first"] * 1000 for c in calls]
    parts = stages(run, calls)
    p50, p95 = statistics.median(ms), _pct(ms, 0.95)
    return {
        "requests": requests,
        "first_audio_ms_p50": p50,
        "first_audio_ms_p95": p95,
        "first_audio_ms_max": max(ms),
        "target_met": p50 <= TARGET_P50_MS and p95 <= TARGET_P95_MS,
        "stages_ms_p50": {k: statistics.median(v) for k, v in parts.items() if v},
        "stages_ms_p95": {k: _pct(v, 0.95) for k, v in parts.items() if v},
        "total_ms_p50": statistics.median(c["total"] * 1000 for c in calls),
    }


def measure(run: Run, clients: int, rounds: int) -> dict[str, float]:
    ttfa: list[float] = []
    total: list[float] = []
    with ThreadPoolExecutor(max_workers=clients) as pool:
        for r in range(rounds):
            seeds = [1000 * clients + 10 * r + c for c in range(clients)]
            for call in pool.map(lambda s: one_stream(run, s), seeds):
                assert call["bytes"] > 0
                ttfa.append(call["first"])
                total.append(call["total"])
    return {
        "ttfa_p50": statistics.median(ttfa),
        "ttfa_p95": _pct(ttfa, 0.95),
        "total_p50": statistics.median(total),
        "total_p95": _pct(total, 0.95),
        "requests": len(ttfa),
    }


def report(args: argparse.Namespace, first: dict[str, Any], results: dict[int, Any]) -> None:
    words = len(LONG_FIRST.split(". ")[0].split())
    print(
        f"machine: {os.cpu_count()} cores, {cpu_model()}; piper, {args.workers or 'default'} "
        f"local worker(s), SQLite, pcm\n"
    )
    verdict = "met" if first["target_met"] else "NOT met"
    print(
        f"first audio, 1 client, first sentence of {words} words, {first['requests']} calls: "
        f"P50 {first['first_audio_ms_p50']:.0f} ms, P95 {first['first_audio_ms_p95']:.0f} ms, "
        f"max {first['first_audio_ms_max']:.0f} ms (target P50 <= {TARGET_P50_MS:.0f}, "
        f"P95 <= {TARGET_P95_MS:.0f}: {verdict}); whole call P50 {first['total_ms_p50']:.0f} ms\n"
    )
    print("| stage | what | P50 | P95 |")
    print("|---|---|---|---|")
    for name, what in STAGES:
        p50 = first["stages_ms_p50"].get(name)
        p95 = first["stages_ms_p95"].get(name)
        if p50 is not None and p95 is not None:
            print(f"| {name} | {what} | {p50:.1f} ms | {p95:.1f} ms |")
    print(f"\nconcurrency: {len(TEXT)}-character, four-sentence text\n")
    print("| clients | requests | first audio P50 | first audio P95 | total P50 | total P95 |")
    print("|---|---|---|---|---|---|")
    for n, r in results.items():
        print(
            f"| {n} | {r['requests']:.0f} | {r['ttfa_p50']:.2f} s | {r['ttfa_p95']:.2f} s | "
            f"{r['total_p50']:.2f} s | {r['total_p95']:.2f} s |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="piper threads per worker")
    parser.add_argument("--first-requests", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", default="1,4,8", help="comma-separated; empty: skip")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    clients = [int(c) for c in args.clients.split(",") if c.strip()]
    run = Run(workers=args.workers, engine="piper", threads=args.threads, env={"LOG_LEVEL": "INFO"})
    try:
        for seed in (1, 2, 3):  # warm-up: first synthesis, first encoder, connections
            one_stream(run, seed, LONG_FIRST)
        first = first_audio(run, args.first_requests)
        results = {n: measure(run, n, args.rounds) for n in clients}
    finally:
        run.close()
    report(args, first, results)
    if args.json:
        payload = {
            "machine": {"cpus": os.cpu_count(), "cpu": cpu_model()},
            "workers": args.workers,
            "threads": args.threads,
            "first_audio": first,
            "concurrency": {str(n): r for n, r in results.items()},
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
