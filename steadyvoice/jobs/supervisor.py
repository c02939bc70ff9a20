"""Starts local worker processes and keeps them alive; the API process never runs the model."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from steadyvoice.jobs.liveness import local_worker_id
from steadyvoice.jobs.store import JobStore
from steadyvoice.observability import metrics
from steadyvoice.observability.logs import event
from steadyvoice.settings import Settings

log = logging.getLogger("steadyvoice.supervisor")

_MAX_BACKOFF = 30.0
_STABLE_AFTER = 60.0


@dataclass
class _Slot:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    failures: int = 0
    restarts: int = 0
    recycles: int = 0
    next_start: float = 0.0
    planned: bool = False  # the last exit was a clean one (recycled, or stopped by a signal)


class Supervisor:
    """Keeps ``settings.workers`` worker subprocesses running, restarting any that die."""

    def __init__(self, settings: Settings, store: JobStore, stop_grace: float = 30.0) -> None:
        self._settings = settings
        self._store = store
        self._grace = stop_grace
        self._slots = [_Slot(i) for i in range(settings.workers)]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        for slot in self._slots:
            self._spawn(slot)
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._thread.start()

    def _spawn(self, slot: _Slot) -> None:
        cmd = [sys.executable, "-m", "steadyvoice", "worker", "--supervised"]
        slot.proc = subprocess.Popen(cmd, env=dict(os.environ))
        slot.started = time.monotonic()
        event(
            log,
            "worker.spawned",
            slot=slot.index,
            pid=slot.proc.pid,
            restarts=slot.restarts,
            recycles=slot.recycles,
        )

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            for slot in self._slots:
                self._check(slot)

    def _check(self, slot: _Slot) -> None:
        proc = slot.proc
        if proc is None:
            if time.monotonic() >= slot.next_start:
                if slot.planned:
                    slot.recycles += 1
                else:
                    slot.restarts += 1
                    metrics.count_worker_restart()
                self._spawn(slot)
            return
        code = proc.poll()
        if code is None:
            return
        self._release(proc.pid)
        # Exit 0 is a worker that chose to stop (a recycling limit, or a signal): replace it at
        # once, without backoff, and do not count it as a crash.
        slot.planned = code == 0
        uptime = time.monotonic() - slot.started
        if slot.planned or uptime > _STABLE_AFTER:
            slot.failures = 0
        else:
            slot.failures += 1
        delay = min(_MAX_BACKOFF, 0.5 * (2 ** max(0, slot.failures - 1))) if slot.failures else 0
        event(
            log,
            "worker.exited",
            slot=slot.index,
            pid=proc.pid,
            code=code,
            planned=slot.planned,
            restart_in=delay,
        )
        slot.proc = None
        slot.next_start = time.monotonic() + delay

    def _release(self, pid: int) -> None:
        metrics.mark_process_dead(pid)
        try:
            report = self._store.release_worker(
                local_worker_id(pid), self._settings.jobs.max_attempts
            )
        except Exception:
            log.exception("could not release the dead worker's jobs")
            return
        for job_id in report.requeued:
            event(log, "job.requeued", job_id=job_id, reason="worker_died", pid=pid)
        for job_id in report.lost:
            event(log, "job.failed", job_id=job_id, error_code="worker_lost", pid=pid)
        metrics.observe_finished_ids(self._store, report.lost)

    def stop(self) -> None:
        """SIGTERM every worker, wait for current jobs to finish, SIGKILL after the grace."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        procs = [s.proc for s in self._slots if s.proc is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._grace
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            self._release(proc.pid)
