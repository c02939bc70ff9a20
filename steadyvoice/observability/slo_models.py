"""The SLO report's shape: every field here is documented in docs/slo.md; names are stable."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Targets(_Frozen):
    """The promises measured against (from ``STEADYVOICE_SLO__*``)."""

    availability: float
    latency_seconds: float
    latency_quantile: float
    latency_max_chars: int


class JobCounts(_Frozen):
    """Jobs created in the window. ``accepted = good + bad + client_errors + canceled``."""

    accepted: int
    in_flight: int
    good: int
    bad: int
    bad_by_code: dict[str, int]
    client_errors: int
    client_errors_by_code: dict[str, int]
    canceled: int


class Refused(_Frozen):
    """Requests refused by admission control (503) in the window: never accepted as jobs."""

    total: int
    by_reason: dict[str, int]


class Percentiles(_Frozen):
    """Nearest-rank percentiles in seconds; ``None`` when ``count`` is 0."""

    count: int
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None


class Latency(_Frozen):
    """End-to-end time of succeeded jobs (all, and short only) and queue wait."""

    e2e: Percentiles
    e2e_short: Percentiles
    queue_wait: Percentiles


class ErrorBudget(_Frozen):
    """``allowed = (1 - target) * eligible``; ``remaining_fraction`` goes negative when blown."""

    allowed: float
    consumed: int
    remaining: float
    remaining_fraction: float | None


class Objective(_Frozen):
    """One SLO: ``attained = good / eligible`` against ``target``."""

    target: float
    eligible: int
    good: int
    bad: int
    attained: float | None
    met: bool | None
    budget: ErrorBudget


class Objectives(_Frozen):
    """The availability SLO and the latency SLO."""

    availability: Objective
    latency: Objective


class IncidentRow(_Frozen):
    """An incident overlapping the window; ``duration_seconds`` runs to now while it is open."""

    id: str
    reason: str
    detail: str | None
    detected_by: str
    started_at: datetime
    ended_at: datetime | None
    open: bool
    duration_seconds: float


class Recovery(_Frozen):
    """Time to recover, over the closed incidents listed (open ones are only counted)."""

    incidents: int
    closed: int
    open: int
    median_seconds: float | None
    max_seconds: float | None


class WorkerRecoveries(_Frozen):
    """Local workers that died in the window: time until their replacement was ready.

    ``immediate`` were replaced at once; ``backoff`` waited because their slot looked like a
    crash loop (docs/operations.md, "Restarts").
    """

    count: int
    immediate: int
    backoff: int
    median_seconds: float | None
    max_seconds: float | None


class DayRow(_Frozen):
    """One UTC day of the window (jobs by ``created_at``, refusals by ``at``)."""

    date: date
    accepted: int
    in_flight: int
    good: int
    bad: int
    client_errors: int
    canceled: int
    refused: int
    availability: float | None
    p99_e2e_seconds: float | None


class SloReport(_Frozen):
    """The whole report, from the job table plus ``incidents``, ``refusals`` and recoveries."""

    window_start: datetime
    window_end: datetime
    window_seconds: float
    targets: Targets
    jobs: JobCounts
    refused: Refused
    availability: float | None
    objectives: Objectives
    latency: Latency
    incidents: list[IncidentRow]
    recovery: Recovery
    worker_recovery: WorkerRecoveries
    days: list[DayRow]
