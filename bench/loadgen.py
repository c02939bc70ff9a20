"""Open-loop load generation against a running service, shared by bench/load.py and bench/soak.py.

- ``poisson_offsets``: arrival times of a Poisson process (exponential gaps), seeded.
- ``open_loop``: sends one job per arrival *at its scheduled time*, whatever earlier requests are
  doing (each arrival is its own task), so a slow service cannot slow the load down (no
  coordinated omission). The client-side latency counts from the scheduled time, not from when
  the request finally went out.
- ``Watcher``: learns when jobs end with one ``GET /v1/jobs?created_after=...`` sweep every
  ``every`` seconds for all the jobs in flight, instead of one poll per job: per-job polling at
  a useful interval would cost the API more than the jobs themselves on a small machine.
- ``saturate``: capacity (jobs/s), from a closed loop that keeps the queue busy.
- ``add_service_arguments``/``start_service``: the ``serve`` under load, from the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from harness import Service, timestamp

from steadyvoice.settings import SloSettings

TERMINAL = frozenset({"succeeded", "failed", "canceled"})
PAGE = 500
ACCEPTED = "accepted"
JOB_TIMEOUT = 600.0  # seconds a job may take before the generator stops waiting


def poisson_offsets(rate: float, seconds: float, rng: random.Random) -> list[float]:
    """Arrival times in ``[0, seconds)`` of a Poisson process of ``rate`` per second."""
    offsets: list[float] = []
    at = rng.expovariate(rate)
    while at < seconds:
        offsets.append(at)
        at += rng.expovariate(rate)
    return offsets


def job_text(number: int) -> str:
    """A one-sentence job text of fixed length (so every fake job takes the same time)."""
    return f"Load job number {number % 1_000_000:06d} reads one short sentence."


def client(svc: Service, connections: int = 512) -> httpx.AsyncClient:
    """An async client for ``svc`` with its admin key and a pool that does not queue arrivals."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(
        base_url=str(svc.http.base_url),
        headers={"Authorization": svc.http.headers["Authorization"]},
        limits=limits,
        timeout=httpx.Timeout(60.0, pool=None),
    )


@dataclass
class _Pending:
    created: float
    done: asyncio.Future[tuple[float, dict[str, Any]]]


@dataclass
class Watcher:
    """Resolves each watched job with (monotonic time it was seen ended, its final record)."""

    http: httpx.AsyncClient
    every: float = 0.05
    sweeps: int = 0
    requests: int = 0
    _pending: dict[str, _Pending] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None

    def watch(self, job: dict[str, Any]) -> asyncio.Future[tuple[float, dict[str, Any]]]:
        done: asyncio.Future[tuple[float, dict[str, Any]]] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending[job["id"]] = _Pending(timestamp(job["created_at"]), done)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        return done

    def forget(self, job_id: str) -> None:
        """Stop watching a job (its waiter gave up)."""
        self._pending.pop(job_id, None)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while self._pending:
            await asyncio.sleep(self.every)
            try:
                await self._sweep()
            except httpx.HTTPError:
                continue  # the API is busy or restarting: try again next round

    async def _sweep(self) -> None:
        """One pass over every job created since the oldest one still in flight."""
        self.sweeps += 1
        oldest = min(p.created for p in self._pending.values()) - 0.001
        since = datetime.fromtimestamp(oldest, UTC).isoformat()
        params: dict[str, Any] = {"created_after": since, "limit": PAGE}
        while self._pending:
            self.requests += 1
            r = await self.http.get("/v1/jobs", params=params)
            r.raise_for_status()
            seen = asyncio.get_running_loop().time()
            body = r.json()
            for job in body["items"]:
                pending = self._pending.get(job["id"])
                if pending is not None and job["status"] in TERMINAL:
                    del self._pending[job["id"]]
                    if not pending.done.done():
                        pending.done.set_result((seen, job))
            if not body.get("next_cursor"):
                return
            params["cursor"] = body["next_cursor"]


@dataclass
class Arrival:
    """One scheduled request and what became of it."""

    scheduled: float  # seconds after the run's start
    lag: float  # seconds the request went out after its scheduled time (generator health)
    outcome: str  # "accepted", "503 overloaded", "429 rate_limited", "error ReadTimeout", ...
    client_seconds: float | None = None  # scheduled send -> client saw the job end
    job: dict[str, Any] | None = None  # the final job record (accepted jobs)


def _outcome(r: httpx.Response) -> str:
    if r.status_code == 202:
        return ACCEPTED
    try:
        code = r.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = "unknown"
    return f"{r.status_code} {code}"


async def _arrive(
    http: httpx.AsyncClient, watcher: Watcher, at: float, start: float, text: str, timeout: float
) -> Arrival:
    loop = asyncio.get_running_loop()
    lag = loop.time() - at
    try:
        r = await http.post("/v1/jobs", json={"text": text})
    except httpx.HTTPError as exc:
        return Arrival(at - start, lag, f"error {type(exc).__name__}")
    arrival = Arrival(at - start, lag, _outcome(r))
    if arrival.outcome == ACCEPTED:
        try:
            seen, job = await asyncio.wait_for(watcher.watch(r.json()), timeout)
        except TimeoutError:
            watcher.forget(r.json()["id"])
            arrival.job = r.json()  # still queued or running: counted as unfinished
            return arrival
        arrival.client_seconds = seen - at
        arrival.job = job
    return arrival


async def open_loop(
    http: httpx.AsyncClient,
    watcher: Watcher,
    rate: float,
    seconds: float,
    seed: int = 0,
    job_timeout: float = JOB_TIMEOUT,
    on_arrival: Callable[[Arrival], None] | None = None,
) -> list[Arrival]:
    """Poisson arrivals at ``rate``/s for ``seconds``, each sent on schedule; wait for all."""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    tasks: list[asyncio.Task[Arrival]] = []
    for number, offset in enumerate(poisson_offsets(rate, seconds, random.Random(seed))):
        at = start + offset
        delay = at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(
            _arrive(http, watcher, at, start, job_text(seed * 1_000_003 + number), job_timeout)
        )
        if on_arrival is not None:
            task.add_done_callback(lambda t: on_arrival(t.result()))
        tasks.append(task)
    return list(await asyncio.gather(*tasks))


@dataclass
class Capacity:
    """Sustained completion rate of a saturated service."""

    jobs_per_second: float
    completed: int
    refused: int
    seconds: float


async def _closed_client(
    http: httpx.AsyncClient, watcher: Watcher, until: float, number: int, ends: list[float]
) -> int:
    refused = 0
    while time.time() < until:
        r = await http.post("/v1/jobs", json={"text": job_text(number)})
        number += 1_000
        if r.status_code != 202:
            refused += 1
            await asyncio.sleep(0.1)  # admission said no: the queue is full enough
            continue
        _, job = await asyncio.wait_for(watcher.watch(r.json()), JOB_TIMEOUT)
        if job["status"] == "succeeded":
            ends.append(timestamp(job["finished_at"]))
    return refused


async def saturate(
    http: httpx.AsyncClient, watcher: Watcher, clients: int, seconds: float, warmup: float = 0.25
) -> Capacity:
    """Keep ``clients`` jobs in flight for ``seconds``; completions per second after warm-up.

    A closed loop is right here: it measures what the workers can finish when never idle.
    Completions are counted by their ``finished_at`` between the end of the warm-up
    (``warmup`` of the time) and the end of the run.
    """
    start = time.time()
    ends: list[float] = []
    runs = [_closed_client(http, watcher, start + seconds, i, ends) for i in range(clients)]
    refused = sum(await asyncio.gather(*runs))
    lo, hi = start + warmup * seconds, start + seconds
    counted = [e for e in ends if lo <= e <= hi]
    span = hi - lo
    return Capacity(len(counted) / span, len(counted), refused, span)


def add_service_arguments(p: argparse.ArgumentParser) -> None:
    """The options that say which ``serve`` to start and how to load it."""
    p.add_argument("--engine", choices=["fake", "piper"], default="fake")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, help="piper threads per worker (default: service's)")
    p.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite in a temp dir)")
    p.add_argument("--postgres", action="store_true", help="a fresh local PostgreSQL database")
    p.add_argument(
        "--fake-seconds", type=float, default=0.2, help="fake engine: seconds of work per job"
    )
    p.add_argument("--slo-seconds", type=float, help="latency objective (default: the service's)")
    p.add_argument("--env", action="append", default=[], help="another setting, NAME=VALUE")
    p.add_argument("--poll", type=float, default=0.05, help="seconds between completion sweeps")
    p.add_argument("--seed", type=int, default=1)


def service_env(args: argparse.Namespace) -> dict[str, str]:
    """Setting overrides for ``serve`` (names without the ``STEADYVOICE_`` prefix)."""
    env: dict[str, str] = {}
    if args.engine == "fake":
        per_char = args.fake_seconds / len(job_text(0))
        env["FAKE__SECONDS_PER_CHAR"] = f"{per_char:.6f}"
    if args.slo_seconds is not None:
        env["SLO__LATENCY_TARGET_SECONDS"] = str(args.slo_seconds)
    for item in args.env:
        name, _, value = item.partition("=")
        env[name.removeprefix("STEADYVOICE_")] = value
    return env


def slo_target(env: dict[str, str]) -> float:
    """The latency objective (seconds, P99 of short jobs) the service runs with."""
    value = env.get("SLO__LATENCY_TARGET_SECONDS")
    return float(value) if value else SloSettings().latency_target_seconds


def start_service(args: argparse.Namespace, env: dict[str, str]) -> Service:
    """``serve`` as the arguments say, ready with all its workers."""
    return Service(
        workers=args.workers,
        engine=args.engine,
        threads=args.threads,
        database_url=args.database_url,
        postgres=args.postgres,
        env=env,
    )
