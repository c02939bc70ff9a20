"""The SLO report as a plain-text table for the terminal (no dependencies)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from steadyvoice.observability.slo_models import Objective, Percentiles, SloReport

Cell = str | int | float | None
_NUMERIC = re.compile(r"-|-?[0-9.]+%?")


def _cell(value: Cell) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _pct(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def _when(value: datetime | None) -> str:
    return "open" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def table(headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> list[str]:
    """Aligned columns: text left, numbers right."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    numeric = [all(_NUMERIC.fullmatch(r[i]) for r in cells) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells)]


def _objective_row(name: str, o: Objective) -> list[Cell]:
    met = "-" if o.met is None else ("yes" if o.met else "NO")
    return [
        name,
        _pct(o.target),
        _pct(o.attained),
        met,
        o.eligible,
        o.bad,
        o.budget.allowed,
        _pct(o.budget.remaining_fraction, 1),
    ]


def _latency_row(name: str, p: Percentiles) -> list[Cell]:
    return [name, p.count, p.p50, p.p95, p.p99, p.max]


def _by_code(title: str, key: str, counts: dict[str, int]) -> list[str]:
    if not counts:
        return []
    return ["", title, *table([key, "count"], sorted(counts.items()))]


def _summary(r: SloReport) -> list[str]:
    j = r.jobs
    return [
        f"SLO report  {_when(r.window_start)} .. {_when(r.window_end)} UTC "
        f"({r.window_seconds / 86400:g} days)",
        "",
        f"accepted {j.accepted}  good {j.good}  bad {j.bad}  client errors {j.client_errors}  "
        f"canceled {j.canceled}  in flight {j.in_flight}  refused {r.refused.total}",
        f"availability {_pct(r.availability)} (good / (good + bad))",
        "",
        *table(
            ["objective", "target", "attained", "met", "eligible", "bad", "allowed", "budget left"],
            [
                _objective_row("availability", r.objectives.availability),
                _objective_row(
                    f"latency <= {r.targets.latency_seconds:g}s "
                    f"(<= {r.targets.latency_max_chars} chars)",
                    r.objectives.latency,
                ),
            ],
        ),
    ]


def _latency(r: SloReport) -> list[str]:
    lat = r.latency
    return [
        "",
        "latency (seconds, nearest rank)",
        *table(
            ["measure", "count", "p50", "p95", "p99", "max"],
            [
                _latency_row("end-to-end", lat.e2e),
                _latency_row("end-to-end, short", lat.e2e_short),
                _latency_row("queue wait", lat.queue_wait),
            ],
        ),
    ]


def _incidents(r: SloReport) -> list[str]:
    rec = r.recovery
    lines = [
        "",
        f"incidents {rec.incidents} ({rec.closed} closed, {rec.open} open)  "
        f"recovery median {_cell(rec.median_seconds)} s  max {_cell(rec.max_seconds)} s",
    ]
    if r.incidents:
        rows: list[list[Cell]] = [
            [_when(i.started_at), _when(i.ended_at), i.duration_seconds, i.reason]
            for i in r.incidents
        ]
        lines += table(["started", "ended", "seconds", "reason"], rows)
    return lines


def _worker_recovery(r: SloReport) -> list[str]:
    w = r.worker_recovery
    return [
        "",
        f"worker deaths {w.count} ({w.immediate} replaced at once, {w.backoff} after backoff)  "
        f"replacement ready median {_cell(w.median_seconds)} s  max {_cell(w.max_seconds)} s",
    ]


def _days(r: SloReport) -> list[str]:
    rows: list[list[Cell]] = [
        [
            d.date.isoformat(),
            d.accepted,
            d.good,
            d.bad,
            d.client_errors,
            d.refused,
            _pct(d.availability),
            d.p99_e2e_seconds,
        ]
        for d in r.days
    ]
    headers = ["day", "accepted", "good", "bad", "client", "refused", "availability", "p99 e2e"]
    return ["", "per day (UTC)", *table(headers, rows)]


def render(report: SloReport) -> str:
    """The whole report as aligned plain text."""
    lines = [
        *_summary(report),
        *_by_code("bad by code", "code", report.jobs.bad_by_code),
        *_by_code("client errors by code", "code", report.jobs.client_errors_by_code),
        *_by_code("refused by reason", "reason", report.refused.by_reason),
        *_latency(report),
        *_incidents(report),
        *_worker_recovery(report),
        *_days(report),
    ]
    return "\n".join(lines) + "\n"
