"""Admission control: refuse a job the queue cannot finish in time (or a full queue).

The estimate comes from the job table (and this process's own worker count), so API processes
with the same settings reach the same answer:

- ``ahead``: interactive jobs queued, and jobs of either lane running (a running job still
  occupies a worker; counting it whole is pessimistic by half a synthesis on average, which is
  the safe side). Queued batch items are not ahead: the claim takes interactive work first
  (steadyvoice.jobs.claims), so a 10,000-item batch does not make a single job look late, nor
  fill ``max_queue``, which counts the interactive lane only. A batch is capped by its own
  size limit (``batch.max_items``) and items get ``batch.deadline_seconds``,
- ``mean``: the mean synthesis time (``finished_at - started_at``) of the ``recent_jobs`` most
  recently created succeeded jobs, the slowest tenth left out (:func:`trimmed_mean`: a job
  held up by a fault is not the queue's speed), cached for ``MEAN_CACHE_SECONDS``,
- ``workers``: live workers that are ready or busy, and never fewer than this process's own
  supervised workers (``workers``; a crash is replaced at once) nor 1,

``estimated = ahead * mean / workers + mean`` (the wait, then this job's own synthesis). A job is
refused when ``queued >= max_queue`` (``queue_full``) or, once there is any history, when
``estimated`` is over its limit -- but never on the estimate while ``ahead < workers``: a
worker is (or is about to be) free, so waiting would not help, and refusing would lock
admission out for good (no new job, so the mean never changes). The limit of a short job (at
most ``slo.latency_max_chars``) is ``admission.latency_fraction`` (by default 0.65) of the
latency objective ``slo.latency_target_seconds`` (``latency``) when that is sooner than its
deadline: accepting it would knowingly break the promise, and under overload the queue would
grow until the deadline, far past the objective, for every accepted job. Not the whole
objective: the estimate is the mean of recent jobs, which lags the slowdown that overload
itself brings, and a queue kept full to the objective rode at it and crossed it (P99 5.43 s
against 5 s at twice the capacity, docs/reliability.md); the margin keeps it held. Any other
job's limit is ``jobs.deadline_seconds`` (``deadline``).

A refusal never creates a job row. Refusals are counted in memory per reason and written to
``refusals`` (one row per reason with its ``count``) at most once per ``FLUSH_SECONDS``: the first
refusal after a quiet second is written at once, later ones within the second by a timer when
it is up (and at API shutdown), so a retry storm costs one write per second, not one per
request. A crash loses at most the last second of refusal counts.
"""

from __future__ import annotations

import importlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NoReturn

from sqlalchemy import func, select

from steadyvoice.errors import Overloaded
from steadyvoice.jobs.lanes import INTERACTIVE
from steadyvoice.jobs.liveness import WorkerRegistry
from steadyvoice.jobs.models import Job, utcnow
from steadyvoice.jobs.states import JobStatus
from steadyvoice.jobs.store import JobStore
from steadyvoice.observability.logs import event
from steadyvoice.observability.models import Refusal
from steadyvoice.settings import Settings

log = logging.getLogger("steadyvoice.admission")

MEAN_CACHE_SECONDS = 1.0
FLUSH_SECONDS = 1.0
QUEUE_FULL = "queue_full"
DEADLINE = "deadline"
LATENCY = "latency"


def trimmed_mean(spans: list[float]) -> float | None:
    """The mean without the slowest tenth: a job held up by a fault (a database cut, a restart
    while it ran) says nothing of how fast the queue moves, and a few of them in the recent
    jobs made admission refuse work the workers were keeping up with. Overload slows every
    job, so the trimmed mean still follows it. None without any span."""
    if not spans:
        return None
    kept = sorted(spans)[: len(spans) - len(spans) // 10]
    return sum(kept) / len(kept)


@dataclass(frozen=True)
class Estimate:
    """What admission saw: the queue, the recent synthesis time and the workers draining it."""

    queued: int  # interactive jobs waiting (batch items wait behind them)
    running: int  # jobs of either lane on a worker
    mean_seconds: float | None
    workers: int
    batch_queued: int = 0

    @property
    def worker_free(self) -> bool:
        """A worker is (or will be at once) free: fewer jobs ahead than live workers."""
        return self.queued + self.running < self.workers

    @property
    def completion_seconds(self) -> float | None:
        """Seconds until a job submitted now would finish; None without any history."""
        if self.mean_seconds is None:
            return None
        ahead = self.queued + self.running
        return ahead * self.mean_seconds / self.workers + self.mean_seconds


class Admission:
    """Decides, before a job is recorded, whether the service can finish it in time."""

    def __init__(self, settings: Settings, store: JobStore) -> None:
        self._settings = settings
        self._store = store
        self._workers = WorkerRegistry(store)
        self._lock = threading.Lock()
        self._mean: tuple[float, float | None] | None = None  # (monotonic time, mean)
        self.refusals = RefusalLog(store)

    def admit(self, chars: int) -> None:
        """Return if the job may be accepted; raise ``Overloaded`` (503) and record it if not."""
        cfg = self._settings.admission
        if not cfg.enabled:
            return
        # More workers only shorten the estimate, so the live-worker count (a read of the
        # workers table) is taken only when this process's own workers would not do.
        est = self.estimate(count_live=False)
        reason, limit = self.limit(chars)
        if est.queued < cfg.max_queue and self._fits(est, limit):
            return
        est = replace(est, workers=max(est.workers, self._serving()))
        if est.queued >= cfg.max_queue:
            self._refuse(QUEUE_FULL, chars, est.completion_seconds, cfg.retry_after_seconds)
        if self._fits(est, limit):
            return
        completion = est.completion_seconds
        assert completion is not None  # _fits is true without history
        retry = max(cfg.retry_after_seconds, math.ceil(completion - limit))
        self._refuse(reason, chars, completion, retry)

    @staticmethod
    def _fits(est: Estimate, limit: float) -> bool:
        completion = est.completion_seconds
        return completion is None or est.worker_free or completion <= limit

    def limit(self, chars: int) -> tuple[str, float]:
        """(reason, seconds): the time a job of ``chars`` characters must finish within."""
        deadline = self._settings.jobs.deadline_seconds
        slo = self._settings.slo
        bound = self.latency_bound()
        if chars <= slo.latency_max_chars and bound < deadline:
            return LATENCY, bound
        return DEADLINE, deadline

    def latency_bound(self) -> float:
        """Seconds a short job must be estimated to finish within: ``admission.latency_fraction``
        of the latency objective."""
        objective = self._settings.slo.latency_target_seconds
        return round(objective * self._settings.admission.latency_fraction, 3)

    def estimate(self, count_live: bool = True) -> Estimate:
        """The current queue, mean synthesis time and worker count (a few indexed queries);
        without ``count_live``, this process's own workers only (one query fewer)."""
        counts = lane_counts(self._store)
        running = sum(n for (status, _), n in counts.items() if status == JobStatus.RUNNING.value)
        queued = JobStatus.QUEUED.value
        # This process's own supervisor replaces a dead worker at once (from a loaded spare, or
        # a cold start of a few seconds): a kill is a dip of seconds, not lost capacity, and
        # refusing through it would turn every worker crash into refusals.
        workers = max(self._serving() if count_live else 0, self._settings.workers)
        return Estimate(
            queued=counts.get((queued, INTERACTIVE), 0),
            running=running,
            mean_seconds=self._mean_synthesis(),
            workers=max(1, workers),
            batch_queued=sum(
                n for (st, lane), n in counts.items() if st == queued and lane != INTERACTIVE
            ),
        )

    def _serving(self) -> int:
        return self._workers.serving(self._settings.jobs.worker_ready_seconds)

    def _mean_synthesis(self) -> float | None:
        """Mean synthesis seconds of the recent succeeded jobs, cached briefly."""
        now = time.monotonic()
        with self._lock:
            if self._mean is not None and now - self._mean[0] < MEAN_CACHE_SECONDS:
                return self._mean[1]
        q = (
            select(Job.started_at, Job.finished_at)
            .where(Job.status == JobStatus.SUCCEEDED.value)
            .order_by(Job.created_at.desc())
            .limit(self._settings.admission.recent_jobs)
        )
        with self._store.reading() as s:
            rows = s.execute(q).all()
        spans = [(end - start).total_seconds() for start, end in rows if start and end]
        mean = trimmed_mean(spans)
        with self._lock:
            self._mean = (now, mean)
        return mean

    def _refuse(self, reason: str, chars: int, estimated: float | None, retry: int) -> NoReturn:
        deadline = self._settings.jobs.deadline_seconds
        objective = self._settings.slo.latency_target_seconds
        bound = self.latency_bound()
        est = None if estimated is None else round(estimated, 3)
        event(log, "job.refused", reason=reason, text_chars=chars, estimated_seconds=est)
        self.refusals.add(reason, chars)
        _observe_refused(reason)
        why = {
            QUEUE_FULL: "the queue is full",
            DEADLINE: f"the queue cannot finish this job within its {deadline:g} s deadline",
            LATENCY: f"the queue cannot finish this job within {bound:g} s, the admission bound "
            f"for the {objective:g} s latency objective",
        }[reason]
        fields = (
            {"latency_target_seconds": objective, "admission_bound_seconds": bound}
            if reason == LATENCY
            else {}
        )
        raise Overloaded(
            f"{why}; retry after {retry} s",
            reason=reason,
            estimated_seconds=est,
            deadline_seconds=deadline,
            retry_after=retry,
            **fields,
        )


# Built once: admission reads it on every new job.
_LANE_COUNTS = (
    select(Job.status, Job.lane, func.count())
    .where(Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]))
    .group_by(Job.status, Job.lane)
)


def lane_counts(store: JobStore) -> dict[tuple[str, str], int]:
    """Jobs queued and running, by (status, lane), from ``ix_jobs_status_lane_created_at``."""
    with store.reading() as s:
        rows = s.execute(_LANE_COUNTS).all()
    return {(str(status), str(lane)): int(n) for status, lane, n in rows}


class RefusalLog:
    """Refusal counts per reason, kept in memory and written at most once per ``flush_seconds``.

    Thread-safe. ``add`` writes at once when the last write is ``flush_seconds`` old, otherwise
    arms a timer that writes when it is; ``close`` (API shutdown) writes what is left. Counts
    that cannot be written (database down) are kept for the next write.
    """

    def __init__(
        self,
        store: JobStore,
        flush_seconds: float = FLUSH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._every = flush_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[int, int]] = {}  # reason -> (count, chars)
        self._flushed_at = -math.inf
        self._timer: threading.Timer | None = None

    def add(self, reason: str, chars: int) -> None:
        """Count one refusal; write the counts if the last write is a second old."""
        with self._lock:
            count, total = self._pending.get(reason, (0, 0))
            self._pending[reason] = (count + 1, total + chars)
            wait = self._flushed_at + self._every - self._clock()
            if wait > 0 and self._timer is None:
                self._timer = threading.Timer(wait, self.flush)
                self._timer.daemon = True
                self._timer.start()
        if wait <= 0:
            self.flush()

    def flush(self) -> None:
        """Write every counted refusal now: one row per reason."""
        with self._lock:
            pending, self._pending = self._pending, {}
            self._flushed_at = self._clock()
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        if not pending:
            return
        at = utcnow()
        rows = [Refusal(at=at, reason=r, count=n, chars=c) for r, (n, c) in pending.items()]
        try:
            with self._store.session() as s:
                s.add_all(rows)
        except Exception:
            log.exception("could not record %d refusals", sum(n for n, _ in pending.values()))
            self._keep(pending)

    def _keep(self, pending: dict[str, tuple[int, int]]) -> None:
        with self._lock:
            for reason, (n, c) in pending.items():
                count, total = self._pending.get(reason, (0, 0))
                self._pending[reason] = (count + n, total + c)

    def close(self) -> None:
        """Write what is left (API shutdown)."""
        self.flush()


def _observe_refused(reason: str) -> None:
    """Count the refusal in Prometheus metrics when that module is installed."""
    try:
        metrics = importlib.import_module("steadyvoice.observability.metrics")
    except ImportError:
        return
    observe = getattr(metrics, "observe_refused", None)
    if callable(observe):
        observe(reason)
