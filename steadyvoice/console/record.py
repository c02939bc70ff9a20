"""The record: the jobs table, filtered, sorted and paged; one job's page; the CSV export.

Reads only, for any signed-in key (``viewer``), limited to the key's tenant as the API's
``GET /v1/jobs`` is; an admin sees and filters every tenant. The export is audited, like a
download: it hands over the record in bulk.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import anyio.to_thread
from fastapi import Request
from fastapi.responses import HTMLResponse, StreamingResponse

from steadyvoice.api.deps import ServicesDep
from steadyvoice.api.policy import allow, call_state
from steadyvoice.console.job_view import audit_trail, verify_job
from steadyvoice.console.jobs import find_job, panel_context
from steadyvoice.console.record_query import (
    SortKey,
    export_csv,
    find_page,
    parse_filter,
)
from steadyvoice.console.routing import console_router
from steadyvoice.console.templates import render
from steadyvoice.console.visit import PREFIX, VisitDep
from steadyvoice.errors import InvalidRequest
from steadyvoice.jobs.states import JobStatus
from steadyvoice.security.principal import Role

router = console_router()
RECORD = f"{PREFIX}/record"
# The query fields the page keeps from one view to the next (the cursor is per page).
FIELDS = ("text", "voice", "requester", "tenant", "status", "from", "to", "sort", "order")
COLUMNS = (
    (SortKey.CREATED, "Created (UTC)"),
    (SortKey.STATUS, "Status"),
    (SortKey.VOICE, "Voice"),
    (SortKey.REQUESTER, "Requester key"),
    (SortKey.TENANT, "Tenant"),
)


def _form(request: Request) -> dict[str, str]:
    return {k: request.query_params.get(k, "") for k in FIELDS if request.query_params.get(k)}


def link(form: dict[str, str], **changes: str) -> str:
    """The record's URL for ``form`` with ``changes`` (an empty value drops the field)."""
    merged = {**form, **changes}
    query = urlencode({k: v for k, v in merged.items() if v})
    return f"{RECORD}?{query}" if query else RECORD


@router.get(RECORD, openapi_extra=allow(Role.VIEWER))
def record_page(request: Request, services: ServicesDep, visit: VisitDep) -> HTMLResponse:
    """The jobs table: filter by text, voice, requester key, tenant (admin), status and
    creation date; sort by a column; page with Newer / Older."""
    form = _form(request)
    scope = visit.principal.scope
    error = None
    page = None
    try:
        wanted = parse_filter(form).scoped(scope)
        page = find_page(services.store, wanted, request.query_params.get("cursor") or None)
    except InvalidRequest as exc:  # the form again, saying what to fix; no table
        error = exc
        call_state(request.scope).error_code = exc.code
        wanted = None
    return render(
        request,
        "record.html",
        status=422 if error else 200,
        form=form,
        error=error,
        page=page,
        wanted=wanted,
        columns=COLUMNS,
        statuses=[s.value for s in JobStatus],
        all_tenants=scope is None,
        link=link,
        here=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
        export=f"{RECORD}/export.csv" + (f"?{urlencode(form)}" if form else ""),
    )


@router.get(f"{RECORD}/export.csv", openapi_extra=allow(Role.VIEWER, audit="console.record.export"))
def export(request: Request, services: ServicesDep, visit: VisitDep) -> StreamingResponse:
    """The filtered view, every page of it, as CSV (streamed as it is read)."""
    wanted = parse_filter(_form(request)).scoped(visit.principal.scope)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        export_csv(services.store, wanted),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="record_{stamp}.csv"'},
    )


@router.get(f"{RECORD}/{{job_id}}", openapi_extra=allow(Role.VIEWER))
async def job_page(
    job_id: str, request: Request, services: ServicesDep, visit: VisitDep
) -> HTMLResponse:
    """One job: player and download, parameters, checksum, the stored file checked against
    it, and the job's audit trail. Another tenant's job is 404, as in the API."""
    scope = visit.principal.scope
    job = await anyio.to_thread.run_sync(find_job, services, scope, job_id)
    verified = await anyio.to_thread.run_sync(verify_job, services.storage, job)
    trail = await anyio.to_thread.run_sync(audit_trail, services.audit, job, scope)
    panel: dict[str, Any] = panel_context(job)
    return render(
        request,
        "record_job.html",
        verified=verified,
        trail=trail,
        back=_back(request.query_params.get("back", "")),
        **panel,
    )


def _back(target: str) -> str:
    """Where "Back to the record" goes: the filtered view the row was opened from, if it is
    one (never another site), else the record's first page."""
    if target.startswith(f"{RECORD}?") and "\\" not in target and len(target) < 2000:
        return target
    return RECORD
