"""Closed-loop clients that insist: submit with an Idempotency-Key until accepted, poll to the end.

Each client takes every ``clients``-th job of a ``Workload``: it posts the job, retrying the
same key after a transport error, a 5xx or a 429 until the service accepts it (202), then polls
``GET /v1/jobs/{id}`` until the job is terminal (or ``job_timeout`` passes), then takes the next.
A ``Tally`` counts what they saw, thread-safely: every 5xx by status and error code, split by
whether the database was deliberately cut at the time.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import httpx

TERMINAL = {"succeeded", "failed", "canceled"}
OUTAGE_GRACE = 5.0  # seconds after a database outage during which 5xx still count against it


class Entry(Protocol):
    """An API process clients talk to: its client's base URL and (admin key) headers."""

    http: httpx.Client


class Workload:
    """``jobs`` texts of exactly ``chars`` characters, each with its own idempotency key."""

    def __init__(self, jobs: int, chars: int, run_id: str) -> None:
        self.run_id = run_id
        self.texts = [
            f"Chaos job {i:07d} of run {run_id}.".ljust(chars - 1, "a") + "." for i in range(jobs)
        ]
        self.keys = [f"chaos-{run_id}-{i}" for i in range(jobs)]

    def __len__(self) -> int:
        return len(self.texts)

    def duplicate_jobs(self, jobs: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
        """Texts of this workload recorded as more than one job (one key, two jobs)."""
        ids: dict[str, list[str]] = {}
        for job in jobs:
            ids.setdefault(job["text"], []).append(job["id"])
        return {text: found for text, found in ids.items() if len(found) > 1}


class Tally:
    """What every client saw, added up under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accepted: dict[int, str] = {}
        self._terminal = 0
        self._errors: Counter[str] = Counter()
        self._5xx: Counter[str] = Counter()
        self._5xx_outage: Counter[str] = Counter()
        self._outage: tuple[float, float] | None = None
        self.timed_out: list[str] = []
        self.rejected: dict[str, str] = {}
        self.abort = threading.Event()  # set when the run cannot go on (clients stop)

    def accepted(self, index: int, job_id: str) -> None:
        with self._lock:
            self._accepted[index] = job_id

    def finished(self) -> None:
        with self._lock:
            self._terminal += 1

    @property
    def terminal(self) -> int:
        """Jobs the clients have seen reach a terminal state (the run's progress)."""
        return self._terminal

    def accepted_ids(self) -> list[str]:
        with self._lock:
            return list(self._accepted.values())

    def database_outage(self, began: float, ended: float) -> None:
        """Mark ``began..ended`` (monotonic) as a deliberate database outage (plus a grace)."""
        with self._lock:
            self._outage = (began, ended + OUTAGE_GRACE)

    def database_cut_now(self) -> None:
        """The database is cut from now on, until ``database_outage`` says when it ended."""
        with self._lock:
            self._outage = (time.monotonic(), float("inf"))

    def error(self, kind: str) -> None:
        with self._lock:
            self._errors[kind] += 1

    def server_error(self, response: httpx.Response) -> None:
        """Count a 5xx answer by status and error code, against the outage if one was on."""
        code = _error_code(response)
        now = time.monotonic()
        with self._lock:
            during = self._outage is not None and self._outage[0] <= now <= self._outage[1]
            (self._5xx_outage if during else self._5xx)[f"{response.status_code} {code}"] += 1

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {
                "http_5xx": sum(self._5xx.values()),
                "http_5xx_by_code": dict(self._5xx),
                "http_5xx_db_outage": sum(self._5xx_outage.values()),
                "http_5xx_db_outage_by_code": dict(self._5xx_outage),
                "transport_errors": self._errors["transport"],
                "http_429": self._errors["429"],
                "not_found_while_polling": self._errors["404"],
                "timed_out_waiting": list(self.timed_out),
                "rejected": dict(self.rejected),
            }


def _error_code(response: httpx.Response) -> str:
    """The body's error code, with its ``reason`` when it has one (``overloaded/latency``)."""
    try:
        error = response.json()["error"]
        return "/".join(str(error[k]) for k in ("code", "reason") if k in error)
    except (ValueError, KeyError, TypeError):
        return "-"


class Client:
    """One insisting client with its own connection pool."""

    def __init__(self, service: Entry, tally: Tally, poll: float, job_timeout: float) -> None:
        self.http = httpx.Client(
            base_url=str(service.http.base_url), headers=dict(service.http.headers), timeout=30
        )
        self.tally = tally
        self.poll = poll
        self.job_timeout = job_timeout

    def run(self, workload: Workload, indexes: Iterable[int]) -> None:
        try:
            for i in indexes:
                if self.tally.abort.is_set():
                    return
                job_id = self.submit(workload.texts[i], workload.keys[i])
                if job_id is None:
                    continue
                self.tally.accepted(i, job_id)
                self.wait(job_id)
        finally:
            self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        """One request; ``None`` (counted) when it should simply be tried again."""
        try:
            r = self.http.request(method, path, **kwargs)
        except httpx.TransportError:
            self.tally.error("transport")
            return None
        if r.status_code >= 500:
            self.tally.server_error(r)
            return None
        if r.status_code == 429:
            self.tally.error("429")
            return None
        return r

    def submit(self, text: str, key: str) -> str | None:
        """Post until accepted; the job id, or ``None`` if refused for good or past the timeout."""
        deadline = time.monotonic() + self.job_timeout
        attempt = 0
        while time.monotonic() < deadline and not self.tally.abort.is_set():
            headers = {"Idempotency-Key": key}
            r = self._call("POST", "/v1/jobs", json={"text": text}, headers=headers)
            if r is not None and r.status_code in (200, 201, 202):
                return str(r.json()["id"])
            if r is not None:
                self.tally.rejected[key] = f"{r.status_code} {_error_code(r)}"
                return None
            time.sleep(min(1.0, 0.05 * 2 ** min(attempt, 5)))
            attempt += 1
        self.tally.rejected[key] = "gave up: not accepted before the job timeout"
        return None

    def wait(self, job_id: str) -> None:
        """Poll until the job is terminal; past ``job_timeout`` note it and move on."""
        deadline = time.monotonic() + self.job_timeout
        while time.monotonic() < deadline and not self.tally.abort.is_set():
            r = self._call("GET", f"/v1/jobs/{job_id}")
            if r is not None and r.status_code != 200:
                self.tally.error(str(r.status_code))
            elif r is not None and r.json()["status"] in TERMINAL:
                self.tally.finished()
                return
            time.sleep(self.poll)
        self.tally.timed_out.append(job_id)
        self.tally.finished()


def run_clients(
    services: Sequence[Entry],
    workload: Workload,
    tally: Tally,
    clients: int,
    poll: float,
    job_timeout: float,
) -> None:
    """Run ``clients`` insisting clients over ``workload`` until each has finished its share;
    client ``c`` talks to ``services[c % len(services)]`` (several API processes share them)."""
    threads = []
    for c in range(clients):
        client = Client(services[c % len(services)], tally, poll, job_timeout)
        share = range(c, len(workload), clients)
        threads.append(
            threading.Thread(target=client.run, args=(workload, share), name=f"client-{c}")
        )
    for t in threads:
        t.start()
    for t in threads:
        t.join()
