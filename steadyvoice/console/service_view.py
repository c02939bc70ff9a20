"""What the Service page shows: readiness, workers, queue depth per lane and, for admins,
this month's SLO report drawn as charts.

The figures come from the code the API already answers with (``readiness`` behind
``/readyz``, ``lane_counts`` behind the queue gauges of ``/metrics``, ``build_report`` behind
``GET /v1/slo``), so the page and the API never disagree. The SLO part is for admin keys only,
as ``GET /v1/slo`` is: it counts every tenant's jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from markupsafe import Markup

from steadyvoice.api.deps import Services
from steadyvoice.api.health import readiness
from steadyvoice.api.schemas import Readiness
from steadyvoice.console.charts import Bar, Span, bar_chart, gauge_bar, timeline
from steadyvoice.jobs.admission import lane_counts
from steadyvoice.jobs.lanes import LANES
from steadyvoice.jobs.models import Worker
from steadyvoice.observability.slo import build_report
from steadyvoice.observability.slo_models import Objective, SloReport
from steadyvoice.security.principal import Principal, Role

# A month's first minutes would make a window too short to say anything; never less than this.
MIN_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class SloCharts:
    """This month's report and its charts (admin only)."""

    report: SloReport
    availability: Markup
    latency: Markup
    budgets: list[tuple[Markup, str]]  # each chart, and its figures in words
    incidents: Markup
    refusals: Markup


@dataclass(frozen=True)
class ServiceView:
    """Everything the Service page renders."""

    ready: Readiness
    workers: list[Worker]
    queue: Markup
    slo: SloCharts | None


def build_view(services: Services, caller: Principal, now: datetime | None = None) -> ServiceView:
    """The page for ``caller``: the SLO part only for an admin."""
    now = now or datetime.now(UTC)
    live = services.workers.live(services.settings.jobs.worker_ready_seconds)
    slo = None
    if caller.may(Role.ADMIN):
        window = max(now - month_start(now), MIN_WINDOW)
        slo = slo_charts(build_report(services.store, services.settings.slo, window, now))
    return ServiceView(
        ready=readiness(services),
        workers=sorted(live, key=lambda w: w.id),
        queue=queue_chart(lane_counts(services.store)),
        slo=slo,
    )


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def queue_chart(counts: dict[tuple[str, str], int]) -> Markup:
    """Jobs waiting and running in each lane."""
    bars = []
    for lane in LANES:
        queued = counts.get(("queued", lane), 0)
        running = counts.get(("running", lane), 0)
        bars.append(Bar(f"{lane}: waiting", queued, f"{queued}", "warn" if queued else "idle"))
        bars.append(Bar(f"{lane}: running", running, f"{running}", "info"))
    return bar_chart("chart-queue", "Queue depth per lane", bars)


def slo_charts(r: SloReport) -> SloCharts:
    return SloCharts(
        report=r,
        availability=availability_chart(r),
        latency=latency_chart(r),
        budgets=[
            (budget_chart(f"chart-budget-{name}", name, o), budget_words(name, o))
            for name, o in (
                ("availability", r.objectives.availability),
                ("latency", r.objectives.latency),
            )
        ],
        incidents=incidents_chart(r),
        refusals=refusals_chart(r),
    )


def availability_chart(r: SloReport) -> Markup:
    """Availability against its objective, zoomed to the top of the scale where they differ."""
    target = r.targets.availability * 100
    attained = None if r.availability is None else r.availability * 100
    if attained is None:
        return bar_chart("chart-availability", "Availability this month", [])
    floor = float(max(0, int(min(attained, target)) - 1))
    tone = "ok" if attained >= target else "bad"
    bar = Bar("measured", attained, f"{attained:.3f} %", tone)
    return bar_chart(
        "chart-availability",
        "Availability this month",
        [bar],
        floor=floor,
        maximum=100.0,
        target=target,
        target_label=f"objective {target:g} %",
    )


def latency_chart(r: SloReport) -> Markup:
    """End-to-end percentiles of short jobs against the latency objective."""
    p = r.latency.e2e_short
    bars = [
        Bar(name, value, f"{value:.2f} s", "ok" if value <= r.targets.latency_seconds else "bad")
        for name, value in (("P50", p.p50), ("P95", p.p95), ("P99", p.p99))
        if value is not None
    ]
    return bar_chart(
        "chart-latency",
        f"End-to-end time of short jobs (up to {r.targets.latency_max_chars} characters)",
        bars,
        target=r.targets.latency_seconds,
        target_label=f"objective P99 ≤ {r.targets.latency_seconds:g} s",
    )


def budget_chart(chart_id: str, name: str, o: Objective) -> Markup:
    """What is left of an objective's error budget, as a bar; the figures in its ``desc``
    (and, for everyone, in the text the page prints beside it: :func:`budget_words`)."""
    left = o.budget.remaining_fraction
    short = "no budget spent yet" if left is None else f"{max(left, 0.0):.0%} left"
    return gauge_bar(
        chart_id, f"Error budget left: {name}", left, f"{name}: {short}", desc=budget_words(name, o)
    )


def budget_words(name: str, o: Objective) -> str:
    left = o.budget.remaining_fraction
    if left is None:
        return f"{name}: no jobs counted yet, so no budget is spent"
    if left < 0:
        return (
            f"{name}: budget overspent, {o.budget.consumed} bad of {o.budget.allowed:.3g} allowed"
        )
    return (
        f"{name}: {left:.0%} of the error budget left "
        f"({o.budget.consumed} bad of {o.budget.allowed:.3g} allowed)"
    )


def incidents_chart(r: SloReport) -> Markup:
    """The month's incidents in time, each with how long until it recovered."""
    spans = [
        Span(
            f"{i.reason} ({i.started_at:%d %b %H:%M})",
            i.started_at,
            i.ended_at,
            f"open for {duration(i.duration_seconds)}"
            if i.open
            else f"recovered in {duration(i.duration_seconds)}",
        )
        for i in r.incidents
    ]
    return timeline("chart-incidents", "Incidents this month", r.window_start, r.window_end, spans)


def refusals_chart(r: SloReport) -> Markup:
    """Requests refused by admission control this month, by reason."""
    bars = [Bar(reason, n, f"{n}", "warn") for reason, n in r.refused.by_reason.items()]
    title = f"Refused requests this month: {r.refused.total}"
    return bar_chart("chart-refusals", title, bars, empty="No request was refused.")


def duration(seconds: float) -> str:
    """A length of time as a person says it: ``45 s``, ``4 min 10 s``, ``2 h 5 min``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
