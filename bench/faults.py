"""The faults a chaos run applies to a real ``serve`` while clients work, on a schedule.

A worker SIGKILL every ``kill_every`` seconds (the first one early, by a sixth of the jobs, so
short runs have one too); and, by the run's progress (jobs seen terminal): a power cut at a
third, a database outage at half (only with a ``TcpProxy`` in front of the database), and a
graceful restart at two thirds. Faults still pending when the clients finish are applied then
(and one worker kill, if none happened).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from harness import Service, timestamp
from tcp_proxy import TcpProxy
from workload import Tally


class Faults:
    """Applies the faults from its own thread (``run``); ``summary()`` says what it did."""

    def __init__(
        self,
        service: Service,
        tally: Tally,
        jobs: int,
        kill_every: float,
        proxy: TcpProxy | None = None,
        outage_seconds: float = 3.0,
    ) -> None:
        self.service = service
        self.tally = tally
        self.kill_every = kill_every
        self.first_kill_at = max(1, jobs // 6)
        self.proxy = proxy
        self.outage_seconds = outage_seconds
        self.plan: list[tuple[int, Callable[[], None]]] = [(share(jobs, 1 / 3), self.power_cut)]
        if proxy is not None:
            self.plan.append((share(jobs, 1 / 2), self.database_outage))
        self.plan.append((share(jobs, 2 / 3), self.graceful_restart))
        self.kills: list[tuple[float, int]] = []
        self.events: dict[str, Any] = {}
        self.error: str | None = None
        self._began = time.monotonic()

    def run(self, clients_done: threading.Event) -> None:
        """Apply faults until the clients are done and every planned fault has happened."""
        self._began = time.monotonic()
        next_kill = self._began + self.kill_every
        try:
            while self.plan or not clients_done.is_set():
                if self.plan and (self.tally.terminal >= self.plan[0][0] or clients_done.is_set()):
                    self.plan.pop(0)[1]()
                    next_kill = time.monotonic() + self.kill_every
                elif not clients_done.is_set() and self._kill_due(next_kill):
                    self.kill_worker()
                    next_kill = time.monotonic() + self.kill_every
                clients_done.wait(0.05)
            if not self.kills:  # a run too short for the schedule still gets its one kill
                self.kill_worker()
        except Exception as exc:  # noqa: BLE001 - reported by the run, which then fails
            self.error = f"{type(exc).__name__}: {exc}"
            self.tally.abort.set()

    def _kill_due(self, next_kill: float) -> bool:
        early = not self.kills and self.tally.terminal >= self.first_kill_at
        return early or time.monotonic() >= next_kill

    def kill_worker(self) -> None:
        pid = self.service.kill_worker()
        if pid is not None:
            self.kills.append((round(time.monotonic() - self._began, 2), pid))

    def power_cut(self) -> None:
        """SIGKILL the whole process group, then start ``serve`` again on the same data."""
        began = time.monotonic()
        victims = self.service.power_cut()
        self.service.start_again()
        self.events["power_cut"] = {
            "at_s": round(began - self._began, 2),
            "pids_killed": len(victims),
            "down_s": round(time.monotonic() - began, 2),
            "ready_at": time.time(),  # wall clock, to compare with job records
        }

    def database_outage(self) -> None:
        """Cut every database connection and refuse new ones for a while, then restore."""
        assert self.proxy is not None
        began = time.monotonic()
        self.tally.database_cut_now()
        cut = self.proxy.outage(self.outage_seconds)
        self.tally.database_outage(began, time.monotonic())
        self.events["db_outage"] = {
            "at_s": round(began - self._began, 2),
            "seconds": self.outage_seconds,
            "connections_cut": cut,
        }

    def graceful_restart(self) -> None:
        """SIGTERM ``serve``, wait for it to finish its work and exit, start it again."""
        began = time.monotonic()
        seconds = self.service.graceful_restart()
        self.events["graceful_restart"] = {
            "at_s": round(began - self._began, 2),
            "down_s": round(seconds, 2),
        }

    def recovery(self, jobs: dict[str, dict[str, Any]]) -> None:
        """Add what the job records say of the recovery after each fault to its figures."""
        cut = self.events.get("power_cut")
        if cut:
            cut["first_job_done_after_ready_s"] = first_finish_after(jobs, cut["ready_at"])

    def summary(self) -> dict[str, Any]:
        return {
            "worker_kills": len(self.kills),
            "kills_at_s": [at for at, _ in self.kills],
            **self.events,
            "not_applied": len(self.plan),
        }


def share(jobs: int, fraction: float) -> int:
    """The progress (jobs seen terminal) at which a fault planned at ``fraction`` is due."""
    return max(1, math.ceil(jobs * fraction))


def first_finish_after(jobs: dict[str, dict[str, Any]], at: float) -> float | None:
    """Seconds from ``at`` (Unix time) to the first job that finished after it."""
    later = [
        timestamp(j["finished_at"]) - at
        for j in jobs.values()
        if j.get("finished_at") and timestamp(j["finished_at"]) >= at
    ]
    return round(min(later), 2) if later else None
