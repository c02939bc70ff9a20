"""``GET /v1/slo``: the SLO report, computed from the job store on request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from steadyvoice.api.deps import ServicesDep
from steadyvoice.api.schemas import ErrorResponse
from steadyvoice.errors import InvalidRequest
from steadyvoice.observability.slo import build_report
from steadyvoice.observability.slo_models import SloReport
from steadyvoice.observability.slo_stats import parse_window

router = APIRouter(prefix="/v1/slo", tags=["slo"])


@router.get("", response_model=SloReport, responses={422: {"model": ErrorResponse}})
def slo_report(
    services: ServicesDep,
    window: Annotated[
        str | None,
        Query(max_length=16, description="How far back from the end: 30d, 12h or 90m."),
    ] = None,
    end: Annotated[
        datetime | None,
        Query(description="End of the window (ISO 8601 with a time zone); default now."),
    ] = None,
) -> SloReport:
    """Availability, latency percentiles, error budgets, incidents and a per-day table.

    Definitions: docs/slo.md. The default window is ``STEADYVOICE_SLO__WINDOW_DAYS`` days.
    """
    settings = services.settings.slo
    if window is None:
        span = timedelta(days=settings.window_days)
    else:
        try:
            span = parse_window(window)
        except ValueError as exc:
            raise InvalidRequest(str(exc), field="window") from exc
    now = datetime.now(UTC)
    if end is not None and (end.tzinfo is None or end > now):
        raise InvalidRequest("end needs a time zone and must not be in the future", field="end")
    return build_report(services.store, settings, span, end or now)
