"""Batches in the console: upload a CSV (or JSONL), watch it progress, download the archive.

The same service, checks and audit actions as ``/v1/batches``: an upload is parsed by the
API's own reader and submitted by the same :class:`BatchService`, so a bad file is refused
row by row before anything is queued, with the API's codes and messages.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import anyio.to_thread
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from steadyvoice.api.batches.routes import BatchesDep
from steadyvoice.api.batches.upload import read_rows
from steadyvoice.api.deps import ServicesDep, note_object
from steadyvoice.api.downloads import output_chunks
from steadyvoice.api.policy import allow, call_state
from steadyvoice.batches.archive import stream_archive
from steadyvoice.batches.models import Batch
from steadyvoice.batches.progress import progress_of, progress_of_page
from steadyvoice.batches.service import BatchService
from steadyvoice.console.routing import console_router
from steadyvoice.console.templates import render
from steadyvoice.console.visit import PREFIX, VisitDep
from steadyvoice.errors import BatchInvalid
from steadyvoice.observability.logs import request_id_var
from steadyvoice.security.principal import Role

router = console_router()
BATCHES = f"{PREFIX}/batches"
LISTED = 20
FAILED_SHOWN = 20


def _rows(service: BatchService, batches: list[Batch]) -> list[dict[str, Any]]:
    # One grouped query for the whole page, not a few per batch.
    progress = progress_of_page(service.store, batches)
    return [{"batch": b, "progress": p} for b, p in zip(batches, progress, strict=True)]


def _list_page(
    request: Request, service: BatchService, scope: str | None, **extra: Any
) -> HTMLResponse:
    batches = service.store.list_batches(scope, None, LISTED)
    status = 422 if extra.get("invalid") else 200
    return render(
        request,
        "batches.html",
        status=status,
        rows=_rows(service, batches),
        max_items=service.settings.batch.max_items,
        **{"invalid": None, **extra},
    )


@router.get(BATCHES, openapi_extra=allow(Role.VIEWER))
def batches_page(request: Request, service: BatchesDep, visit: VisitDep) -> HTMLResponse:
    """The tenant's recent batches with their progress; an operator also gets the upload."""
    return _list_page(request, service, visit.principal.scope)


@router.post(BATCHES, openapi_extra=allow(Role.OPERATOR, audit="batch.create"))
async def upload(request: Request, service: BatchesDep, visit: VisitDep) -> Response:
    """Queue a batch from the uploaded file; a file with problems is refused whole, and the
    page lists every problem by row and column."""
    parsed = await read_rows(request, service.settings.batch.max_items)
    try:
        batch, _ = await anyio.to_thread.run_sync(
            service.submit, parsed, visit.principal, request_id_var.get()
        )
    except BatchInvalid as exc:
        call_state(request.scope).error_code = exc.code  # the audit row names the refusal
        page = partial(_list_page, request, service, visit.principal.scope, invalid=exc)
        return await anyio.to_thread.run_sync(page)
    note_object(request, batch.id)
    return RedirectResponse(f"{BATCHES}/{batch.id}", status_code=303)


def _detail(service: BatchService, batch_id: str, scope: str | None) -> dict[str, Any]:
    batch = service.store.get(batch_id, scope)
    return {
        "batch": batch,
        "progress": progress_of(service.store, batch, failed_shown=FAILED_SHOWN),
    }


@router.get(f"{BATCHES}/{{batch_id}}", openapi_extra=allow(Role.VIEWER))
def batch_page(
    batch_id: str, request: Request, service: BatchesDep, visit: VisitDep
) -> HTMLResponse:
    """One batch: counts, percent done, rate and time left, the failed rows, the archive.
    While it runs, the page's script refreshes the progress part."""
    return render(request, "batch.html", **_detail(service, batch_id, visit.principal.scope))


@router.get(f"{BATCHES}/{{batch_id}}/progress", openapi_extra=allow(Role.VIEWER))
def progress_part(
    batch_id: str, request: Request, service: BatchesDep, visit: VisitDep
) -> HTMLResponse:
    """The progress part alone, for the page's script to swap in."""
    context = _detail(service, batch_id, visit.principal.scope)
    return render(request, "batch_progress.html", **context)


@router.post(
    f"{BATCHES}/{{batch_id}}/cancel", openapi_extra=allow(Role.OPERATOR, audit="batch.cancel")
)
def cancel(batch_id: str, service: BatchesDep, visit: VisitDep) -> RedirectResponse:
    """Cancel the queued items; running ones finish."""
    service.store.cancel(service.store.get(batch_id, visit.principal.scope))
    return RedirectResponse(f"{BATCHES}/{batch_id}", status_code=303)


@router.get(
    f"{BATCHES}/{{batch_id}}/archive",
    openapi_extra=allow(Role.VIEWER, audit="batch.archive.download"),
)
def archive(
    batch_id: str, service: BatchesDep, services: ServicesDep, visit: VisitDep
) -> StreamingResponse:
    """The ZIP of the finished items with its manifests, as ``/v1/batches/{id}/archive``."""
    batch = service.store.get(batch_id, visit.principal.scope)
    return StreamingResponse(
        stream_archive(service.store, batch, lambda job: output_chunks(services, job)),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="batch_{batch.id}.zip"'},
    )
