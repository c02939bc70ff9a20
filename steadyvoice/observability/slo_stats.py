"""Small exact statistics for the SLO report: windows, nearest-rank percentiles, budgets."""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from datetime import timedelta

from steadyvoice.observability.slo_models import ErrorBudget, Objective, Percentiles

MAX_WINDOW = timedelta(days=366)
_WINDOW = re.compile(r"(\d{1,6})([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
DIGITS = 9  # rounding of derived ratios, so (1 - 0.999) * 1000 reads 1.0, not 1.0000000000000009


def parse_window(text: str) -> timedelta:
    """``30d``, ``12h`` or ``90m`` as a timedelta; ``ValueError`` with a clear message otherwise."""
    match = _WINDOW.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"window must be a whole number followed by d, h or m (e.g. 30d, 12h, 90m), "
            f"got {text!r}"
        )
    window = timedelta(**{_UNITS[match[2]]: int(match[1])})
    if not timedelta(0) < window <= MAX_WINDOW:
        raise ValueError(f"window must be more than 0 and at most 366d, got {text!r}")
    return window


def nearest_rank(ordered: Sequence[float], p: float) -> float | None:
    """The nearest-rank ``p``-th percentile of sorted values: ``ordered[ceil(p/100 * n) - 1]``."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def percentiles(values: Sequence[float]) -> Percentiles:
    """P50, P95, P99 (nearest rank) and max of ``values`` (any order)."""
    ordered = sorted(values)
    return Percentiles(
        count=len(ordered),
        p50=nearest_rank(ordered, 50),
        p95=nearest_rank(ordered, 95),
        p99=nearest_rank(ordered, 99),
        max=ordered[-1] if ordered else None,
    )


def median(values: Sequence[float]) -> float | None:
    """The ordinary median (mean of the two middle values for an even count)."""
    return statistics.median(values) if values else None


def ratio(good: int, total: int) -> float | None:
    """``good / total`` rounded to ``DIGITS``; ``None`` when nothing was eligible."""
    return round(good / total, DIGITS) if total else None


def objective(target: float, good: int, bad: int) -> Objective:
    """An SLO's attainment and error budget from its good and bad event counts."""
    eligible = good + bad
    allowed = round((1 - target) * eligible, DIGITS)
    remaining = round(allowed - bad, DIGITS)
    attained = ratio(good, eligible)
    return Objective(
        target=target,
        eligible=eligible,
        good=good,
        bad=bad,
        attained=attained,
        met=None if attained is None else attained >= target,
        budget=ErrorBudget(
            allowed=allowed,
            consumed=bad,
            remaining=remaining,
            remaining_fraction=round(remaining / allowed, DIGITS) if allowed > 0 else None,
        ),
    )
