"""``GET /v1/slo``: the SLO report, computed from the job store on request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from steadyvoice.api.deps import ServicesDep
from steadyvoice.api.policy import allow
from steadyvoice.api.schemas import Timestamp, error_responses
from steadyvoice.errors import InvalidRequest
from steadyvoice.observability.slo import build_report
from steadyvoice.observability.slo_models import SloReport
from steadyvoice.observability.slo_stats import parse_window
from steadyvoice.security.principal import Role

router = APIRouter(prefix="/v1/slo", tags=["slo"])
EARLIEST = datetime.min.replace(tzinfo=UTC)


@router.get(
    "",
    response_model=SloReport,
    responses=error_responses(422),
    openapi_extra=allow(Role.ADMIN),
)
def slo_report(
    services: ServicesDep,
    window: Annotated[
        str | None,
        Query(max_length=16, description="How far back from the end: 30d, 12h or 90m."),
    ] = None,
    end: Annotated[
        Timestamp | None,
        Query(description="End of the window (ISO 8601 with a time zone); default now."),
    ] = None,
) -> SloReport:
    """Availability, latency percentiles, error budgets, incidents and a per-day table,
    over every tenant (admin only).

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
    end = (end or now).astimezone(UTC)  # Timestamp checked it has a UTC time
    if end - EARLIEST < span:  # e.g. end=0001-01-02T00:00Z&window=30d: no datetime for the start
        raise InvalidRequest("the window would start before the year 1", field="end")
    return build_report(services.store, settings, span, end)
