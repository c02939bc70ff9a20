"""Starts local worker processes and keeps them alive; the API process never runs the model.

Each worker gets one end of a socket pair (``jobs.link``): it reports ready and each finished
job, and its death is seen the moment the socket closes, so the watch loop sleeps in
``select`` instead of polling. When a worker dies, the restart policy (``jobs.restarts``)
decides between an immediate replacement and a backoff. Spare workers (``worker.spares``) load
their engine ahead of time and wait: a replacement is then a promotion, not a cold start.
With ``worker.max_age``, serving workers are recycled in turn (``_retire_one``): one at a time,
between jobs, and only while every other slot is up and ready. Under systemd the watch loop also
pings the watchdog (``steadyvoice.systemd.Watchdog``): a hung loop stops the pings. With
``worker.metrics_port``, each worker process is given a port of its own to serve its metrics on
(``_free_port``; ``steadyvoice.observability.slot_metrics``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from steadyvoice.jobs import link
from steadyvoice.jobs.liveness import local_worker_id, new_instance
from steadyvoice.jobs.models import utcnow
from steadyvoice.jobs.restarts import Backoff, Life
from steadyvoice.jobs.store import JobStore
from steadyvoice.observability import metrics, recoveries
from steadyvoice.observability.logs import event
from steadyvoice.observability.slot_metrics import port_range
from steadyvoice.settings import Settings

if TYPE_CHECKING:
    from steadyvoice.systemd import Watchdog

log = logging.getLogger("steadyvoice.supervisor")

_LONGEST_SLEEP = 1.0  # the watch loop also polls every child this often (belt and braces)


def spares_for(settings: Settings) -> int:
    """Spare workers to keep loaded: the setting, else 1 for piper (slow to load on CPU)."""
    if settings.workers == 0:
        return 0
    if settings.worker.spares is not None:
        return settings.worker.spares
    return 1 if settings.engine == "piper" else 0


@dataclass
class _Child:
    proc: subprocess.Popen[bytes]
    link: socket.socket
    standby: bool
    instance: str  # the worker id's random part, given to the child (``--instance``)
    loaded: bool = False
    ready_at: float | None = None
    serving_since: float | None = None  # its READY report (a spare's: after its promotion)
    retiring: bool = False  # asked to finish its job and exit (worker.max_age)
    jobs_done: int = 0
    metrics_port: int | None = None  # its port of worker.metrics_port's range (slot_metrics)

    @property
    def worker_id(self) -> str:
        return local_worker_id(self.proc.pid, self.instance)

    def life(self, code: int, now: float) -> Life:
        ready_for = None if self.ready_at is None else now - self.ready_at
        return Life(code=code, ready_for=ready_for, jobs_done=self.jobs_done)


@dataclass
class _Outage:
    """A slot without a ready worker since an unplanned death."""

    worker_id: str
    exit_code: int
    died_at: datetime
    died: float  # monotonic
    backed_off: bool = False
    crashes: int = 0


@dataclass
class _Slot:
    index: int
    spare: bool = False
    child: _Child | None = None
    backoff: Backoff = field(default_factory=Backoff)
    next_start: float = 0.0
    outage: _Outage | None = None
    restarts: int = 0
    recycles: int = 0
    planned: bool = True  # the last exit was a clean one (or there was none yet)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:  # a real-time signal has no name of its own
        return f"signal {number}"


class Supervisor:
    """Keeps ``settings.workers`` workers serving (plus spares), replacing any that die."""

    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        stop_grace: float = 30.0,
        watchdog: Watchdog | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._grace = stop_grace
        self._watchdog = watchdog
        spares = spares_for(settings)
        self._slots = [_Slot(i) for i in range(settings.workers)]
        self._slots += [_Slot(settings.workers + i, spare=True) for i in range(spares)]
        self._ports = port_range(settings.worker.metrics_port, len(self._slots))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)

    def start(self) -> None:
        for slot in self._slots:  # serving slots first: they get the CPU before the spares
            self._spawn(slot)
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._thread.start()

    # --- processes ----------------------------------------------------------------------

    def _spawn(self, slot: _Slot) -> None:
        parent, child_end = socket.socketpair()
        cmd = [sys.executable, "-m", "steadyvoice", "worker", "--supervised"]
        cmd += ["--link", str(child_end.fileno())] + (["--standby"] if slot.spare else [])
        instance = new_instance()
        cmd += ["--instance", instance, "--recycles", str(slot.recycles)]
        port = self._free_port()
        cmd += ["--metrics-port", str(port)] if port is not None else []
        try:
            proc = subprocess.Popen(cmd, env=dict(os.environ), pass_fds=(child_end.fileno(),))
        finally:
            child_end.close()
        parent.setblocking(False)
        slot.child = _Child(
            proc=proc, link=parent, standby=slot.spare, instance=instance, metrics_port=port
        )
        self._selector.register(parent, selectors.EVENT_READ, slot.child)
        event(
            log,
            "worker.spawned",
            slot=slot.index,
            pid=proc.pid,
            spare=slot.spare,
            restarts=slot.restarts,
            recycles=slot.recycles,
            metrics_port=port,
        )

    def _free_port(self) -> int | None:
        """The lowest port of the range no living worker holds (None: no range). A reaped
        worker's port is free again; a promoted spare keeps its own."""
        held = {s.child.metrics_port for s in self._slots if s.child is not None}
        return next((p for p in self._ports if p not in held), None)

    def _promote(self, slot: _Slot, spare_slot: _Slot) -> None:
        child = spare_slot.child
        assert child is not None
        spare_slot.child, spare_slot.next_start, spare_slot.planned = None, time.monotonic(), True
        child.standby = False
        slot.child = child
        with contextlib.suppress(OSError):
            child.link.send(link.PROMOTE)
        event(log, "worker.promoted", slot=slot.index, pid=child.proc.pid, loaded=child.loaded)

    def _take_spare(self) -> _Slot | None:
        """The spare slot whose worker is furthest along (loaded first), if any."""
        spares = [s for s in self._slots if s.spare and s.child is not None]
        spares.sort(key=lambda s: not (s.child is not None and s.child.loaded))
        return spares[0] if spares else None

    def _start(self, slot: _Slot) -> None:
        if not slot.planned:
            slot.restarts += 1
            metrics.count_worker_restart()
        elif not slot.spare:  # a spare refilled after its promotion is no recycle
            slot.recycles += 1
        spare = None if slot.spare else self._take_spare()
        if spare is not None:
            self._promote(slot, spare)
        else:
            self._spawn(slot)

    # --- the watch loop -----------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(self._sleep()):
                if key.data is None:
                    with contextlib.suppress(OSError):
                        self._wake_r.recv(64)
                else:
                    self._read(key.data)
            if self._stop.is_set():
                return
            for slot in self._slots:
                self._check(slot)
            self._retire_one()
            if self._watchdog is not None:
                self._watchdog.turn()  # the loop turned: it is not hung

    def _sleep(self) -> float:
        now = time.monotonic()
        due = [s.next_start - now for s in self._slots if s.child is None]
        longest = _LONGEST_SLEEP if self._watchdog is None else self._watchdog.every
        return max(0.0, min([longest, *due]))

    def _slot_of(self, child: _Child) -> _Slot | None:
        return next((s for s in self._slots if s.child is child), None)

    def _read(self, child: _Child) -> None:
        try:
            data = child.link.recv(256)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        slot = self._slot_of(child)
        if not data:  # the worker is gone (or going): reap it now
            self._unwatch(child)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(timeout=2)
            if slot is not None:
                self._check(slot)
            return
        for byte in data:
            if byte == link.LOADED[0]:  # a spare is as good as ready for the restart policy
                child.loaded, child.ready_at = True, time.monotonic()
            elif byte == link.READY[0]:
                child.ready_at = child.serving_since = time.monotonic()
                if slot is not None:
                    self._ready(slot, child)
            elif byte == link.JOB[0]:
                child.jobs_done += 1

    def _unwatch(self, child: _Child) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(child.link)
        child.link.close()

    def _check(self, slot: _Slot) -> None:
        child = slot.child
        if child is None:
            if time.monotonic() >= slot.next_start:
                self._start(slot)
            return
        code = child.proc.poll()
        if code is not None:
            self._exited(slot, child, code)

    def _exited(self, slot: _Slot, child: _Child, code: int) -> None:
        now = time.monotonic()
        slot.child = None
        self._unwatch(child)
        delay = slot.backoff.delay_after(child.life(code, now), now)
        slot.planned = code == 0
        if not slot.planned and not slot.spare:
            if slot.outage is None:
                slot.outage = _Outage(child.worker_id, code, utcnow(), now)
            else:
                slot.outage.crashes += 1
            slot.outage.backed_off |= delay > 0
        slot.next_start = now + delay
        # Killed by a signal (the OOM killer, an operator's kill -9): worth a look, so WARNING.
        killed_by = _signal_name(-code) if code < 0 else None
        event(
            log,
            "worker.exited",
            level=logging.INFO if killed_by is None else logging.WARNING,
            slot=slot.index,
            pid=child.proc.pid,
            code=code,
            signal=killed_by,
            planned=slot.planned,
            spare=slot.spare,
            jobs_done=child.jobs_done,
            restart_in=delay,
        )
        if delay == 0:
            self._start(slot)  # the replacement first; the database writes after
        self._release(child)

    def _retire_one(self) -> None:
        """``worker.max_age``: ask the longest-serving worker past it to finish its job and exit.

        A rolling recycle: one worker at a time, and only while every slot is up, every serving
        worker ready and every spare loaded, so capacity drops by one worker at most (by none
        when a loaded spare takes over). The worker exits 0 after its current job; the usual
        planned replacement follows (a spare's promotion, else a fresh start).
        """
        max_age = self._settings.worker.max_age
        if not max_age or not self._settled():
            return
        now = time.monotonic()
        due = [
            (now - s.child.serving_since, s)
            for s in self._slots
            if not s.spare and s.child is not None and s.child.serving_since is not None
        ]
        age, slot = max(due, key=lambda pair: pair[0], default=(0.0, None))
        if slot is None or slot.child is None or age < max_age:
            return
        slot.child.retiring = True
        metrics.count_worker_recycle("max_age")
        event(
            log,
            "worker.retiring",
            slot=slot.index,
            pid=slot.child.proc.pid,
            reason="max_age",
            served_seconds=round(age, 1),
            jobs_done=slot.child.jobs_done,
        )
        with contextlib.suppress(ProcessLookupError):
            slot.child.proc.send_signal(signal.SIGTERM)  # the worker finishes its job first

    def _settled(self) -> bool:
        for slot in self._slots:
            child = slot.child
            if child is None or child.retiring or child.proc.poll() is not None:
                return False
            if not (child.loaded if slot.spare else child.serving_since is not None):
                return False
        return True

    def _ready(self, slot: _Slot, child: _Child) -> None:
        outage, slot.outage = slot.outage, None
        if outage is None or slot.spare:
            return
        recoveries.record(
            self._store,
            recoveries.Recovered(
                worker_id=outage.worker_id,
                replacement_id=child.worker_id,
                exit_code=outage.exit_code,
                died_at=outage.died_at,
                ready_at=utcnow(),
                seconds=time.monotonic() - outage.died,
                backed_off=outage.backed_off,
                crashes=outage.crashes,
            ),
        )

    def _release(self, child: _Child) -> None:
        pid = child.proc.pid
        metrics.process_exited(pid)
        try:
            report = self._store.release_worker(child.worker_id, self._settings.jobs.max_attempts)
        except Exception:
            log.exception("could not release the dead worker's jobs")
            return
        for job_id in report.requeued:
            event(log, "job.requeued", job_id=job_id, reason="worker_died", pid=pid)
        for job_id in report.lost:
            event(log, "job.failed", job_id=job_id, error_code="worker_lost", pid=pid)
        metrics.observe_finished_ids(self._store, report.lost)

    # --- stopping -----------------------------------------------------------------------

    def stop(self) -> None:
        """SIGTERM every worker, wait for current jobs to finish, SIGKILL after the grace."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
        children = [s.child for s in self._slots if s.child is not None]
        for child in children:
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._grace
        for child in children:
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
            self._unwatch(child)
            self._release(child)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()
