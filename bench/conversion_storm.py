"""A viewer's conversion storm must not stall anyone else (issue 22, item 1).

A real ``serve`` (fake engine at 22.05 kHz, like Piper) holds jobs of about 300 s of audio.
48 clients with one tenant's viewer key download ``?format=`` conversions at once, while another
tenant's key calls ``GET /v1/me`` every 20 ms; its latency is the result (target: P99 <= 50 ms).

Two phases, each with 48 clients:

* ``same``: all 48 ask for the same job as mp3 (the probe's scenario). One conversion is made;
  the others wait for it and are served from the cache (``X-Conversion-Cache: hit``).
* ``cached``: the same 48 downloads again, all cache hits, in 8 bursts one after another (so
  that its P99 is not one burst's maximum): the cost of the burst of requests alone (keys,
  rate windows, audit rows, 48 files sent), with no conversion running.
* ``distinct``: 12 jobs x 4 formats, 48 different conversions, each client asking again after
  ``Retry-After`` until served or the phase's time is up: the pool is kept full and the excess
  is refused 503 ``busy``.

Reports ``/v1/me`` P50/P95/P99/max per phase, the downloads' outcomes (served as conversion or
cache hit, busy), and the API process's peak RSS. Run: ``python bench/conversion_storm.py``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from harness import Service, percentile

CLIENTS = 48
FORMATS = ("mp3", "opus", "aac", "flac")
# About 300 s of fake audio: 0.06 s per character.
SENTENCE = "The quarterly figures were read aloud to the whole committee this morning. "
TEXT = (SENTENCE * 70)[:4_990]


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:  # gone
        pass
    return 0


def conversion_pids(group: int) -> list[int]:
    """The fork server's processes in ``serve``'s process group: the conversion pool."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if (
                not proc.name.isdigit()
                or int(proc.joinpath("stat").read_text().split()[4]) != group
            ):
                continue
            if b"forkserver" in proc.joinpath("cmdline").read_bytes():
                found.append(int(proc.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


class Probe:
    """``GET /v1/me`` with another tenant's key every 20 ms, and the API's RSS, until stopped.

    In a process of its own, as another tenant's client is: in this one it would wait for the
    GIL behind the 48 download threads, and measure them rather than the service."""

    def __init__(self, url: str, key: str, pid: int) -> None:
        context = multiprocessing.get_context("fork")
        self._stop = context.Event()
        self._results: multiprocessing.Queue[dict[str, Any]] = context.Queue()
        self._process = context.Process(
            target=_probe, args=(url, key, pid, self._stop, self._results), daemon=True
        )
        self._summary: dict[str, Any] = {}

    def start(self) -> None:
        self._process.start()

    def stop(self) -> None:
        self._stop.set()
        self._summary = self._results.get(timeout=120)
        self._process.join(timeout=30)

    def summary(self) -> dict[str, Any]:
        return self._summary


def _probe(url: str, key: str, pid: int, stop: Any, results: Any) -> None:
    http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"})
    latencies: list[float] = []
    errors = peak_rss_kb = peak_pool_rss_kb = 0  # the pool's: the largest conversion process
    while not stop.is_set():
        began = time.perf_counter()
        try:
            ok = http.get("/v1/me", timeout=120).status_code == 200
        except httpx.TransportError:
            ok = False
        latencies.append(time.perf_counter() - began)
        errors += not ok
        if len(latencies) % 5 == 1:  # every 5th: scanning /proc costs the machine too
            peak_rss_kb = max(peak_rss_kb, rss_kb(pid))
            pool = [rss_kb(p) for p in conversion_pids(pid)]
            peak_pool_rss_kb = max(peak_pool_rss_kb, *pool, 0)
        stop.wait(0.02)
    ms = [1000 * x for x in latencies]
    results.put(
        {
            "me_calls": len(ms),
            "me_errors": errors,
            "me_p50_ms": round(percentile(ms, 0.50), 1),
            "me_p95_ms": round(percentile(ms, 0.95), 1),
            "me_p99_ms": round(percentile(ms, 0.99), 1),
            "me_max_ms": round(max(ms), 1),
            "api_peak_rss_mb": round(peak_rss_kb / 1024, 1),
            "conversion_process_peak_rss_mb": round(peak_pool_rss_kb / 1024, 1),
        }
    )


def key(svc: Service, role: str, tenant: str) -> str:
    r = svc.http.post("/v1/keys", json={"role": role, "tenant": tenant})
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


def make_jobs(svc: Service, operator: str, count: int) -> list[str]:
    auth = {"Authorization": f"Bearer {operator}"}
    ids = []
    for i in range(count):
        r = svc.http.post("/v1/jobs", json={"text": TEXT, "seed": i}, headers=auth)
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    for job_id in ids:
        deadline = time.monotonic() + 300
        while True:
            job = svc.http.get(f"/v1/jobs/{job_id}", headers=auth).json()
            if job["status"] == "succeeded":
                break
            assert job["status"] in ("queued", "running") and time.monotonic() < deadline, job
            time.sleep(0.2)
    return ids


def storm(
    svc: Service,
    viewer: str,
    probe_key: str,
    targets: list[tuple[str, str]],
    seconds: float,
    bursts: int = 1,
    nice: int = 19,
) -> dict[str, Any]:
    """Each client downloads its target, again after ``busy`` (as ``Retry-After`` says), until
    served or ``seconds`` are up; all of that ``bursts`` times in a row, under one probe.

    The 48 clients run in a process of their own at ``nice``: on a 2-core machine their
    threads, reading 48 downloads at once, would otherwise take a core from the service they
    measure (in production they are on other machines), and the probe would measure them."""
    url = str(svc.http.base_url)
    context = multiprocessing.get_context("fork")
    results: multiprocessing.Queue[dict[str, int]] = context.Queue()
    probe = Probe(url, probe_key, svc.pid)
    probe.start()
    began = time.monotonic()
    clients = context.Process(
        target=_clients, args=(url, viewer, targets, seconds, bursts, nice, results)
    )
    clients.start()
    outcomes = results.get(timeout=3600)
    clients.join(timeout=60)
    elapsed = time.monotonic() - began
    probe.stop()
    return {"seconds": round(elapsed, 1), "outcomes": outcomes, **probe.summary()}


def _clients(
    url: str,
    viewer: str,
    targets: list[tuple[str, str]],
    seconds: float,
    bursts: int,
    nice: int,
    results: Any,
) -> None:
    os.nice(nice)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(len(targets))
    stop_at = 0.0

    def client(job_id: str, fmt: str) -> None:
        http = httpx.Client(base_url=url, timeout=300)
        http.headers["Authorization"] = f"Bearer {viewer}"
        start.wait()
        while True:
            r = http.get(f"/v1/jobs/{job_id}/audio", params={"format": fmt})
            if r.status_code == 200:
                what = f"served_{r.headers['x-conversion-cache']}"
            elif r.status_code == 503 and r.json()["error"]["code"] == "busy":
                what = "busy" if "retry-after" in r.headers else "busy_without_retry_after"
            else:
                what = f"http_{r.status_code}"
            with lock:
                outcomes[what] += 1
            if what != "busy" or time.monotonic() > stop_at:
                break
            time.sleep(max(0.0, min(float(r.headers["retry-after"]), stop_at - time.monotonic())))
        http.close()

    for _ in range(bursts):
        start.reset()
        stop_at = time.monotonic() + seconds
        threads = [threading.Thread(target=client, args=t) for t in targets]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    results.put(dict(outcomes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the distinct phase")
    parser.add_argument("--jobs", type=int, default=12)
    parser.add_argument(
        "--nice", type=int, default=19, help="the download clients' niceness (0: the service's)"
    )
    parser.add_argument(
        "--bursts", type=int, default=8, help="bursts of 48 cache hits in the cached phase"
    )
    args = parser.parse_args()
    env = {"FAKE__SAMPLE_RATE": "22050", "LOG_LEVEL": "WARNING"}
    with Service(workers=1, engine="fake", env=env) as svc:
        operator, viewer = key(svc, "operator", "acme"), key(svc, "viewer", "acme")
        other = key(svc, "viewer", "globex")
        jobs = make_jobs(svc, operator, args.jobs)
        seconds = svc.http.get(f"/v1/jobs/{jobs[0]}").json()["output"]["duration_seconds"]
        quiet = Probe(str(svc.http.base_url), other, svc.pid)
        quiet.start()
        time.sleep(3)
        quiet.stop()
        same = storm(svc, viewer, other, [(jobs[0], "mp3")] * CLIENTS, 0, 1, args.nice)
        cached = storm(svc, viewer, other, [(jobs[0], "mp3")] * CLIENTS, 0, args.bursts, args.nice)
        targets = [(j, f) for j in jobs for f in FORMATS][:CLIENTS]
        distinct = storm(svc, viewer, other, targets, args.seconds, 1, args.nice)
        conversions = svc.env.get("STEADYVOICE_CONVERSION__WORKERS", "auto (CPU count)")
        result = {
            "job_audio_seconds": seconds,
            "clients_nice": args.nice,
            "clients": CLIENTS,
            "conversion_workers": conversions,
            "quiet": quiet.summary(),
            "same": same,
            "cached": cached,
            "distinct": distinct,
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
