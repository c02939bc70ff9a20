"""The SLO report, computed from the job table (the record of truth), incidents and refusals.

Definitions (docs/slo.md has the full text):

* The window is ``[now - window, now)``. A job belongs to it by ``created_at``, a refusal by
  ``at`` (a refusal row counts ``count`` refusals: their sum is reported); an incident is
  listed when it overlaps the window.
* Each job created in the window is classified by :func:`outcome_of`: ``good`` (succeeded by its
  deadline), ``bad`` (failed for our reasons, or succeeded late), ``client_error`` (failed
  because of what the client sent) or ``canceled``. A job still queued or running is ``bad``
  with code ``overdue`` once its deadline has passed, and ``in_flight`` (not counted) before.
* ``availability = good / (good + bad)``; client errors, cancellations, in-flight jobs and
  admission refusals are excluded (refusals are reported separately).
* Latency: end-to-end is ``finished_at - created_at`` of succeeded jobs; queue wait is
  ``started_at - created_at`` (the latest start) of accepted jobs a worker started. Percentiles
  are nearest-rank. The latency SLO counts short succeeded jobs (``size_of`` is ``short``) that
  finished within ``latency_target_seconds`` against ``LATENCY_QUANTILE``.

Memory: rows are streamed; only the latency samples are kept, 8 bytes each in ``array('d')``
(about 32 bytes per succeeded job in all), so a million jobs costs some 32 MB.
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, or_, select

from steadyvoice.jobs.models import Job
from steadyvoice.jobs.states import JobStatus
from steadyvoice.jobs.store import JobStore
from steadyvoice.observability import recoveries
from steadyvoice.observability.models import Incident, Refusal
from steadyvoice.observability.outcomes import Outcome, outcome_of, size_of
from steadyvoice.observability.slo_models import (
    DayRow,
    IncidentRow,
    JobCounts,
    Latency,
    Objectives,
    Recovery,
    Refused,
    SloReport,
    Targets,
)
from steadyvoice.observability.slo_stats import median, nearest_rank, objective, percentiles, ratio
from steadyvoice.settings import SloSettings

# "P99 end-to-end < 5 s" as an SLO: 99 % of short succeeded jobs finish within the target.
LATENCY_QUANTILE = 0.99
OVERDUE = "overdue"  # still queued or running after its deadline
LATE = "late"  # succeeded, but after its deadline
UNKNOWN = "unknown"  # failed with no error code recorded
OPEN_STATUSES = frozenset({JobStatus.QUEUED.value, JobStatus.RUNNING.value})
BATCH = 10_000


def _samples() -> array[float]:
    return array("d")


@dataclass
class _Day:
    """Counts for one UTC day (or, as the total, for the whole window)."""

    in_flight: int = 0
    refused: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    e2e: array[float] = field(default_factory=_samples)

    def row(self, day: date) -> DayRow:
        good, bad = self.outcomes["good"], self.outcomes["bad"]
        return DayRow(
            date=day,
            accepted=self.outcomes.total(),
            in_flight=self.in_flight,
            good=good,
            bad=bad,
            client_errors=self.outcomes["client_error"],
            canceled=self.outcomes["canceled"],
            refused=self.refused,
            availability=ratio(good, good + bad),
            p99_e2e_seconds=nearest_rank(sorted(self.e2e), 99),
        )


@dataclass
class _Tally:
    """Everything accumulated while streaming the window's jobs."""

    settings: SloSettings
    now: datetime
    days: dict[date, _Day]
    bad_by_code: Counter[str] = field(default_factory=Counter)
    client_by_code: Counter[str] = field(default_factory=Counter)
    refused_by_reason: Counter[str] = field(default_factory=Counter)
    e2e_short: array[float] = field(default_factory=_samples)
    queue_wait: array[float] = field(default_factory=_samples)
    short_fast: int = 0

    def add_job(self, row: Any) -> None:
        day = self.days[row.created_at.date()]
        outcome, code = self._classify(row)
        if outcome is None:
            day.in_flight += 1
            return
        day.outcomes[outcome] += 1
        if outcome == "bad":
            self.bad_by_code[code or UNKNOWN] += 1
        elif outcome == "client_error":
            self.client_by_code[code or UNKNOWN] += 1
        if row.started_at is not None:
            self.queue_wait.append((row.started_at - row.created_at).total_seconds())
        if row.status == JobStatus.SUCCEEDED.value and row.finished_at is not None:
            self._add_e2e(day, (row.finished_at - row.created_at).total_seconds(), row.chars)

    def _add_e2e(self, day: _Day, seconds: float, chars: int) -> None:
        day.e2e.append(seconds)
        if size_of(chars, self.settings.latency_max_chars) == "short":
            self.e2e_short.append(seconds)
            self.short_fast += seconds <= self.settings.latency_target_seconds

    def _classify(self, row: Any) -> tuple[Outcome | None, str | None]:
        """The job's outcome (``None``: in flight) and the code it is counted under."""
        if row.status in OPEN_STATUSES:
            return ("bad", OVERDUE) if row.deadline_at < self.now else (None, None)
        outcome = outcome_of(row.status, row.error_code, row.finished_at, row.deadline_at)
        if outcome == "bad" and row.status == JobStatus.SUCCEEDED.value:
            return outcome, LATE
        return outcome, row.error_code

    def add_refusals(self, at: datetime, reason: str, count: int) -> None:
        self.days[at.date()].refused += count
        self.refused_by_reason[reason] += count


def _days_of(start: datetime, end: datetime) -> dict[date, _Day]:
    """One empty tally per UTC day that overlaps ``[start, end)``."""
    days: dict[date, _Day] = {}
    day = start.astimezone(UTC).date()
    while datetime.combine(day, time(), UTC) < end:
        days[day] = _Day()
        day += timedelta(days=1)
    return days


def _stream_jobs(store: JobStore, tally: _Tally, start: datetime, end: datetime) -> None:
    q = select(
        Job.status,
        Job.error_code,
        Job.created_at,
        Job.started_at,
        Job.finished_at,
        Job.deadline_at,
        func.length(Job.text).label("chars"),
    ).where(Job.created_at >= start, Job.created_at < end)
    with store.reading() as s:
        for row in s.execute(q.execution_options(yield_per=BATCH)):
            tally.add_job(row)


def _stream_refusals(store: JobStore, tally: _Tally, start: datetime, end: datetime) -> None:
    """Each row aggregates ``count`` refusals (at most one per reason, second and process)."""
    q = select(Refusal.at, Refusal.reason, Refusal.count).where(
        Refusal.at >= start, Refusal.at < end
    )
    with store.reading() as s:
        for at, reason, count in s.execute(q.execution_options(yield_per=BATCH)):
            tally.add_refusals(at, reason, count)


def _incidents(store: JobStore, start: datetime, now: datetime) -> list[IncidentRow]:
    q = (
        select(Incident)
        .where(
            Incident.started_at < now,
            or_(Incident.ended_at.is_(None), Incident.ended_at > start),
        )
        .order_by(Incident.started_at, Incident.id)
    )
    with store.reading() as s:
        found = list(s.scalars(q))
    return [
        IncidentRow(
            id=i.id,
            reason=i.reason,
            detail=i.detail,
            detected_by=i.detected_by,
            started_at=i.started_at,
            ended_at=i.ended_at,
            open=i.ended_at is None,
            duration_seconds=((i.ended_at or now) - i.started_at).total_seconds(),
        )
        for i in found
    ]


def _recovery(incidents: list[IncidentRow]) -> Recovery:
    closed = [i.duration_seconds for i in incidents if not i.open]
    return Recovery(
        incidents=len(incidents),
        closed=len(closed),
        open=len(incidents) - len(closed),
        median_seconds=median(closed),
        max_seconds=max(closed) if closed else None,
    )


def _counts(total: _Day, tally: _Tally) -> JobCounts:
    return JobCounts(
        accepted=total.outcomes.total(),
        in_flight=total.in_flight,
        good=total.outcomes["good"],
        bad=total.outcomes["bad"],
        bad_by_code=dict(sorted(tally.bad_by_code.items())),
        client_errors=total.outcomes["client_error"],
        client_errors_by_code=dict(sorted(tally.client_by_code.items())),
        canceled=total.outcomes["canceled"],
    )


def _total(days: dict[date, _Day]) -> _Day:
    total = _Day()
    for day in days.values():
        total.in_flight += day.in_flight
        total.refused += day.refused
        total.outcomes.update(day.outcomes)
        total.e2e.extend(day.e2e)
    return total


def build_report(
    store: JobStore, settings: SloSettings, window: timedelta, now: datetime
) -> SloReport:
    """The SLO report for ``[now - window, now)`` (``now`` must be timezone-aware)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    start = now - window
    tally = _Tally(settings=settings, now=now, days=_days_of(start, now))
    _stream_jobs(store, tally, start, now)
    _stream_refusals(store, tally, start, now)
    incidents = _incidents(store, start, now)
    total = _total(tally.days)
    good, bad = total.outcomes["good"], total.outcomes["bad"]
    short = len(tally.e2e_short)
    return SloReport(
        window_start=start.astimezone(UTC),
        window_end=now.astimezone(UTC),
        window_seconds=window.total_seconds(),
        targets=Targets(
            availability=settings.availability_target,
            latency_seconds=settings.latency_target_seconds,
            latency_quantile=LATENCY_QUANTILE,
            latency_max_chars=settings.latency_max_chars,
        ),
        jobs=_counts(total, tally),
        refused=Refused(
            total=total.refused, by_reason=dict(sorted(tally.refused_by_reason.items()))
        ),
        availability=ratio(good, good + bad),
        objectives=Objectives(
            availability=objective(settings.availability_target, good, bad),
            latency=objective(LATENCY_QUANTILE, tally.short_fast, short - tally.short_fast),
        ),
        latency=Latency(
            e2e=percentiles(total.e2e),
            e2e_short=percentiles(tally.e2e_short),
            queue_wait=percentiles(tally.queue_wait),
        ),
        incidents=incidents,
        recovery=_recovery(incidents),
        worker_recovery=recoveries.summary(store, start, now),
        days=[day.row(d) for d, day in tally.days.items()],
    )
