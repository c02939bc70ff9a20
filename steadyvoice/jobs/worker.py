"""The worker process: load the engine once, then claim and run jobs until told to stop."""

from __future__ import annotations

import gc
import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from steadyvoice.engines.base import DeviceMemory, Engine
from steadyvoice.jobs import liveness
from steadyvoice.jobs.age import AgeLimit
from steadyvoice.jobs.backoff import STORE_ERRORS
from steadyvoice.jobs.dispatch import ProgressBell
from steadyvoice.jobs.doorbell_pg import Bell, worker_bell
from steadyvoice.jobs.link import JOB, READY, WorkerLink
from steadyvoice.jobs.liveness import WorkerRegistry
from steadyvoice.jobs.runner import run_claimed
from steadyvoice.jobs.stall import Progress, ProgressWatch, idle_limit, step_limit
from steadyvoice.jobs.store import Claim, JobStore
from steadyvoice.jobs.watch import ClaimWatch
from steadyvoice.observability import metrics
from steadyvoice.observability.logs import event
from steadyvoice.settings import Settings
from steadyvoice.storage.backend import open_storage
from steadyvoice.systemd import Notifier, Watchdog
from steadyvoice.voices.profiles import VoiceService
from steadyvoice.voices.store import VoiceStore

log = logging.getLogger("steadyvoice.worker")

MB = 1024 * 1024
STORE_WAIT_MAX_SECONDS = 5.0  # the longest wait between tries while the database is away


@dataclass
class _State:
    stop: threading.Event = field(default_factory=threading.Event)
    # Heartbeats go on after a stop request, while the current job finishes.
    exited: threading.Event = field(default_factory=threading.Event)
    watch: ClaimWatch | None = None  # the job in hand, and whether it is still ours
    jobs_done: int = 0
    status: str = liveness.LOADING
    recycled: str | None = None  # why this worker stopped to be replaced, if it did
    stalled: bool = False  # the main loop is past its step's limit (steadyvoice.jobs.stall)


class Worker:
    """One resident engine serving jobs from the store."""

    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        engine: Engine,
        worker_id: str,
        parent_pid: int | None = None,
        link: WorkerLink | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._engine = engine
        self._storage = open_storage(settings, "outputs")
        self._profiles = VoiceService(settings, VoiceStore(store))
        self._news = ProgressBell(settings.run_dir)  # wakes API calls waiting on our jobs
        self._registry = WorkerRegistry(store)
        # A standalone worker serves its own /metrics (cli); supervised ones are in serve's,
        # unless the cli gives one a port of its own (observability.slot_metrics).
        own_port = settings.worker.metrics_port if parent_pid is None and link is None else 0
        self.card = liveness.Card(metrics_port=own_port or None)
        self._id = worker_id
        self._parent_pid = parent_pid
        self._link = link  # to the supervisor: ready and job reports, a spare's promotion
        self._state = _State()
        # A standalone worker under systemd (steadyvoice.systemd); a supervised one has none.
        self._notifier = notifier or Notifier(None)
        # Pings and lease renewals only while the main loop moves on (standalone workers: a
        # supervisor's own loop watches its children).
        self._standalone = parent_pid is None and link is None
        jobs = settings.jobs
        self._progress = Progress(idle_limit(jobs.lease_seconds, jobs.poll_interval_seconds))
        self._watchdog = Watchdog.of(self._notifier, self._progress.healthy)
        # Supervised workers are recycled by age by their supervisor, one at a time.
        max_age = settings.worker.max_age if link is None else 0.0
        self._age = AgeLimit(max_age, self._registry, worker_id, settings.jobs.worker_ready_seconds)
        metrics.configure(settings.slo)

    @property
    def recycled(self) -> str | None:
        """The limit that retired it (``max_jobs``, ``max_memory``, ``max_device_memory``,
        ``max_age``), if one did."""
        return self._state.recycled

    def request_stop(self, *_: object) -> None:
        """Finish the current job (if any), take no new one, then exit."""
        self._state.status = liveness.STOPPING
        self._state.stop.set()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: FrameType | None) -> None:
            event(log, "worker.stopping", signal=signum)
            self._notifier.stopping()
            self.request_stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self) -> None:
        """Register, load the engine, then serve until stopped.

        A database that goes away meanwhile never ends it: every store call waits for the
        database to come back (a job's own writes for as long as its lease lives)."""
        if not self._register():
            return
        beat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        beat.start()
        doorbell = worker_bell(self._settings, self._state.stop)
        try:
            self._notifier.status(f"loading the {self._engine.name} engine")
            self._engine.load()
            # The engine, its text front end and every module are loaded for good: keep them out
            # of the collector's sight. Each collection then walks only the objects of a job
            # (steadier latency), and the interpreter's final collection at exit no longer
            # walks millions of long-lived objects (seconds of a stop's grace period).
            gc.freeze()
            self._stand_by()
            if not self._state.stop.is_set():
                self._state.status = liveness.READY
            _guarded("beat", self._beat)  # on a store error, the heartbeat thread beats again
            if self._link is not None and not self._state.stop.is_set():
                self._link.send(READY)
            metrics.set_process_memory("worker")
            event(log, "worker.ready", worker_id=self._id, engine=self._engine.name)
            if self._standalone:
                self._progress.serving()
            self._notifier.ready(f"serving: {self._engine.name} engine loaded ({self._id})")
            self._age.serving()
            self._check_limits_fit()
            self._serve(doorbell)
        finally:
            doorbell.close()
            self._state.stop.set()
            self._state.exited.set()
            beat.join(timeout=5)
            self._unregister()
            event(
                log,
                "worker.stopped",
                worker_id=self._id,
                jobs_done=self._state.jobs_done,
                recycled=self._state.recycled,
            )

    def _serve(self, doorbell: Bell) -> None:
        poll = self._settings.jobs.poll_interval_seconds
        while not self._state.stop.is_set():
            self._progress.mark()
            try:
                claim = self._store.claim(
                    self._id,
                    self._settings.jobs.lease_seconds,
                    batch_max_running=self._settings.batch.max_running,
                )
            except STORE_ERRORS as exc:
                _store_unavailable("claim", exc)
                self._state.stop.wait(poll)
                continue
            if claim is None:
                doorbell.wait(poll)
                self._recycle_if_due(idle=True)
                continue
            self._run(claim)
            self._recycle_if_due()

    def _run(self, claim: Claim) -> None:
        # The heartbeat thread publishes state; no extra write per job on the hot path.
        jobs = self._settings.jobs
        watch = ProgressWatch(self._store, claim, self._progress, jobs.lease_seconds)
        if self._standalone:
            limit = step_limit(claim, self._progress.idle_limit, jobs.max_audio_seconds)
            self._progress.step(limit)
        self._state.watch = watch
        self._state.status = liveness.BUSY
        try:
            run_claimed(
                claim,
                self._engine,
                self._store,
                self._storage,
                self._profiles,
                self._settings.slo,
                self._news,
                watch,
                self._settings.jobs.max_audio_seconds,
            )
        except STORE_ERRORS:
            # The runner records store and disk failures itself; these two are the last line
            # that keeps one job's trouble from ending the worker. The lease, no longer
            # renewed, hands the job to the reaper.
            log.exception("job left to the reaper")
        except OSError:
            log.exception("job left to the reaper")
        finally:
            self._state.watch = None
            if self._standalone:
                self._progress.serving()
            self._state.jobs_done += 1
            if self._link is not None:
                self._link.send(JOB)
            if not self._state.stop.is_set():
                self._state.status = liveness.READY

    def _stand_by(self) -> None:
        """A supervisor's spare: engine loaded, no job taken until it is promoted."""
        if self._link is None or not self._link.standby:
            return
        self._state.status = liveness.STANDBY
        _guarded("beat", self._beat)  # on a store error, the heartbeat thread beats again
        if not self._link.wait_promoted(self._state.stop):
            self.request_stop()

    def _recycle_if_due(self, *, idle: bool = False) -> None:
        """Past a limit, stop after this job: the supervisor (or systemd) starts a fresh process.

        A long-lived process that runs a GPU model tends to grow (allocator fragmentation, caches,
        leaks in native code); a fresh one starts from the baseline again.
        """
        reason = self._age_passed() if idle else self._limit_passed()
        if reason is None or self._state.stop.is_set():
            return
        self._state.recycled = reason
        metrics.count_worker_recycle(reason)
        event(
            log,
            "worker.recycling",
            worker_id=self._id,
            reason=reason,
            jobs_done=self._state.jobs_done,
            memory_mb=metrics.resident_memory_bytes() // MB,
            device_memory_mb=self._device_memory() // MB,
        )
        self._notifier.stopping(f"recycling ({reason}): a fresh process follows")
        self.request_stop()
        _guarded("beat", self._beat)  # peers see it stopping now, not a heartbeat later

    def _limit_passed(self) -> str | None:
        limits = self._settings.worker
        if limits.max_jobs and self._state.jobs_done >= limits.max_jobs:
            return "max_jobs"
        if limits.max_memory_mb and metrics.resident_memory_bytes() > limits.max_memory_mb * MB:
            return "max_memory"
        device = limits.max_device_memory_mb
        if device and self._device_memory() > device * MB:
            return "max_device_memory"
        return self._age_passed()

    def _age_passed(self) -> str | None:
        try:
            return "max_age" if self._age.due(self._engine.name) else None
        except STORE_ERRORS as exc:  # the peers cannot be seen: ask again later
            _store_unavailable("age", exc)
            return None

    def _device_memory(self) -> int:
        if isinstance(self._engine, DeviceMemory):
            return self._engine.device_memory_bytes()
        return 0

    def _check_limits_fit(self) -> None:
        """A memory limit below what the loaded engine needs would recycle after every job."""
        limits = self._settings.worker
        memory, device = metrics.resident_memory_bytes(), self._device_memory()
        if (limits.max_memory_mb and memory > limits.max_memory_mb * MB) or (
            limits.max_device_memory_mb and device > limits.max_device_memory_mb * MB
        ):
            log.warning(
                "worker memory limit is below the loaded engine's baseline: it will be "
                "recycled after every job",
                extra={"memory_mb": memory // MB, "device_memory_mb": device // MB},
            )

    def _beat(self) -> None:
        watch = self._state.watch
        self._registry.beat(
            self._id,
            self._state.status,
            watch.claim.job.id if watch else None,
            self._state.jobs_done,
        )

    def _renew(self) -> None:
        """Extend the job's lease; once the store refuses (canceled, taken back), tell the
        watch, which stops the engine at its next sentence, and stop renewing. The watch
        learns each renewal too: the runner retries its writes while the lease lives."""
        watch = self._state.watch
        if watch is None or watch.gone:
            return
        asked = watch.now()
        if self._store.heartbeat(watch.claim, self._settings.jobs.lease_seconds):
            watch.renewed(asked)
        else:
            watch.lost()

    def _stalled(self) -> bool:
        stalled = self._progress.stalled()
        if stalled and not self._state.stalled:
            watch = self._state.watch
            event(
                log,
                "worker.stalled",
                level=logging.ERROR,
                worker_id=self._id,
                job_id=watch.claim.job.id if watch else None,
                limit_seconds=self._progress.limit,
            )
        self._state.stalled = stalled
        return stalled

    def _register(self) -> bool:
        """Add our liveness row, waiting for the database if need be (False: stopped first)."""
        delay = self._settings.jobs.poll_interval_seconds
        while not self._state.stop.is_set():
            try:
                self._registry.register(self._id, self._engine.name, self.card)
                if self._standalone:  # a recycled predecessor's marker: we take its place
                    self._registry.clear_retired(self._id, self._engine.name)
                return True
            except STORE_ERRORS as exc:
                _store_unavailable("register", exc)
                self._state.stop.wait(delay)
                delay = min(delay * 2, STORE_WAIT_MAX_SECONDS)
        return False

    def _unregister(self) -> None:
        try:
            if self._state.recycled and self._standalone:
                # Down until its replacement registers: peers must not recycle meanwhile.
                self._registry.retire(self._id)
            else:
                self._registry.remove(self._id)
        except STORE_ERRORS as exc:  # the row ages out: readiness counts recent beats only
            _store_unavailable("remove", exc)

    def _heartbeat_loop(self) -> None:
        interval = self._settings.jobs.heartbeat_seconds
        if self._watchdog is not None:  # systemd's watchdog wants a ping more often
            interval = min(interval, self._watchdog.every)
        while not self._state.exited.wait(interval):
            if self._parent_pid is not None and os.getppid() != self._parent_pid:
                event(log, "worker.orphaned", parent_pid=self._parent_pid)
                self.request_stop()
            if not self._stalled():  # a hung job's lease runs out: the reaper requeues it
                _guarded("lease", self._renew)  # first: the lease matters more than the beat
            _guarded("beat", self._beat)
            metrics.set_process_memory("worker")  # never raises
            if self._watchdog is not None:
                self._watchdog.turn()


def _store_unavailable(step: str, exc: Exception) -> None:
    event(
        log, "worker.store_unavailable", level=logging.WARNING, step=step, error=type(exc).__name__
    )


def _guarded(step: str, call: Callable[[], None]) -> None:
    """``call()``, logging instead of raising: the heartbeat thread tries again shortly."""
    try:
        call()
    except STORE_ERRORS as exc:
        _store_unavailable(step, exc)
    except Exception:
        log.exception("heartbeat failed")
