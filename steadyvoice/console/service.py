"""The Service page: is it ready, what are the workers doing, how deep are the queues, and
(admin) did the service keep this month's promises. Charts are SVG drawn on the server."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from steadyvoice.api.deps import ServicesDep
from steadyvoice.api.policy import allow
from steadyvoice.console.routing import console_router
from steadyvoice.console.service_view import build_view, duration
from steadyvoice.console.templates import render
from steadyvoice.console.visit import PREFIX, VisitDep
from steadyvoice.security.principal import Role

router = console_router()
SERVICE = f"{PREFIX}/service"


@router.get(SERVICE, openapi_extra=allow(Role.VIEWER))
def service_page(request: Request, services: ServicesDep, visit: VisitDep) -> HTMLResponse:
    """Readiness and each worker's state, queue depth per lane; for an admin also this
    month's availability and P99 against the objectives, the error budgets left, the
    incidents with their recovery times, and the refusals (``GET /v1/slo``'s figures)."""
    view = build_view(services, visit.principal)
    return render(request, "service.html", view=view, duration=duration)
