"""Batch routes: submit, read, list, cancel, retry, archive."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from steadyvoice.api.batches.schemas import BatchChange, BatchOut, BatchPage
from steadyvoice.api.batches.upload import read_rows
from steadyvoice.api.cursor import decode_cursor, encode_cursor
from steadyvoice.api.deps import CallerDep, ServicesDep, note_object
from steadyvoice.api.downloads import output_chunks
from steadyvoice.api.policy import allow
from steadyvoice.api.schemas import error_responses
from steadyvoice.batches.archive import stream_archive
from steadyvoice.batches.models import Batch
from steadyvoice.batches.progress import progress_of, progress_of_page
from steadyvoice.batches.service import BatchService
from steadyvoice.dispatch import make_dispatcher
from steadyvoice.observability.logs import request_id_var
from steadyvoice.security.principal import Role

router = APIRouter(prefix="/v1/batches", tags=["batches"])
ERRORS = error_responses(404, 409, 413, 422)
_ITEM = {
    "type": "object",
    "required": ["text"],
    "properties": {
        "text": {"type": "string"},
        "voice": {"type": "string"},
        "seed": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
        "speed": {"type": "number", "minimum": 0.25, "maximum": 4.0},
        "format": {"type": "string"},
        "name": {"type": "string", "maxLength": 200},
    },
    "additionalProperties": {"description": "a metadata column, kept with the item"},
}
# The body is read by hand (upload.py): its forms are declared here for the API docs.
BATCH_BODY = {
    "required": True,
    "description": "JSON items, a CSV file, or JSONL (application/x-ndjson, an item a line).",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["items"],
                "properties": {"items": {"type": "array", "items": _ITEM}},
            }
        },
        "text/csv": {"schema": {"type": "string", "description": "a header line, then rows"}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        },
    },
}


def batch_service(request: Request, services: ServicesDep) -> BatchService:
    """The app's batch service, made on first use from what ``create_app`` built."""
    found: BatchService | None = getattr(request.app.state, "batches", None)
    if found is None:
        found = BatchService(
            services.settings,
            services.store,
            services.engine,
            make_dispatcher(services.settings, services.store),
            services.voices,
        )
        request.app.state.batches = found
    return found


BatchesDep = Annotated[BatchService, Depends(batch_service)]


def _out(service: BatchService, batch: Batch) -> BatchOut:
    return BatchOut.of(batch, progress_of(service.store, batch))


@router.post(
    "",
    status_code=202,
    response_model=BatchOut,
    responses=ERRORS,
    openapi_extra={**allow(Role.OPERATOR, audit="batch.create"), "requestBody": BATCH_BODY},
)
async def create_batch(
    request: Request,
    response: Response,
    service: BatchesDep,
    caller: CallerDep,
    idempotency_key: Annotated[
        str | None, Header(max_length=256, pattern=r"^[^\x00-\x1f\x7f]*$")
    ] = None,
    callback_url: Annotated[
        str | None,
        Query(max_length=2048, description="Called (signed) when the batch finishes: webhooks"),
    ] = None,
) -> BatchOut:
    """Queue many jobs at once: JSON ``{"items": [...]}``, or a CSV or JSONL file (as the
    body, or the ``file`` part of a multipart upload). Columns: ``text``, ``voice``, ``seed``,
    ``speed``, ``format``, ``name``; any other column is metadata, kept for the manifests.

    Every row is checked as a single job would be, before anything is recorded: a bad batch
    answers 422 ``batch_invalid`` with ``errors`` (row, column, code, message) and creates
    nothing. A repeated ``Idempotency-Key`` returns the first batch.
    """
    parsed = await read_rows(request, service.settings.batch.max_items)
    rid = request_id_var.get()
    batch, _created = await anyio.to_thread.run_sync(
        service.submit, parsed, caller, rid, idempotency_key, callback_url
    )
    note_object(request, batch.id)
    response.headers["Location"] = f"/v1/batches/{batch.id}"
    return await anyio.to_thread.run_sync(_out, service, batch)


@router.get("", response_model=BatchPage, responses=ERRORS, openapi_extra=allow(Role.VIEWER))
def list_batches(
    service: BatchesDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> BatchPage:
    """The tenant's batches, newest first; follow ``next_cursor``."""
    before = decode_cursor(cursor) if cursor else None
    batches = service.store.list_batches(caller.scope, before, limit)
    nxt = encode_cursor(batches[-1].created_at, batches[-1].id) if len(batches) == limit else None
    shown = progress_of_page(service.store, batches)  # failed items: GET /v1/batches/{id}
    items = [BatchOut.of(b, p) for b, p in zip(batches, shown, strict=True)]
    return BatchPage(items=items, next_cursor=nxt)


@router.get(
    "/{batch_id}", response_model=BatchOut, responses=ERRORS, openapi_extra=allow(Role.VIEWER)
)
def get_batch(batch_id: str, service: BatchesDep, caller: CallerDep) -> BatchOut:
    """Counts per status, percent done, throughput, ETA, and the failed items with codes."""
    return _out(service, service.store.get(batch_id, caller.scope))


@router.post(
    "/{batch_id}/cancel",
    response_model=BatchChange,
    responses=ERRORS,
    openapi_extra=allow(Role.OPERATOR, audit="batch.cancel"),
)
def cancel_batch(batch_id: str, service: BatchesDep, caller: CallerDep) -> BatchChange:
    """Cancel the queued items; running ones finish. Canceling again changes nothing."""
    batch = service.store.get(batch_id, caller.scope)
    changed = service.store.cancel(batch)
    batch = service.store.get(batch_id)
    return BatchChange(changed=changed, batch=_out(service, batch))


@router.post(
    "/{batch_id}/retry",
    response_model=BatchChange,
    responses=ERRORS,
    openapi_extra=allow(Role.OPERATOR, audit="batch.retry"),
)
def retry_batch(batch_id: str, service: BatchesDep, caller: CallerDep) -> BatchChange:
    """A new attempt for each failed item, with the same params and seed: the same bytes."""
    batch = service.store.get(batch_id, caller.scope)
    made = service.retry(batch)
    return BatchChange(changed=len(made), batch=_out(service, batch))


@router.get(
    "/{batch_id}/archive",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}}, **ERRORS},
    openapi_extra=allow(Role.VIEWER, audit="batch.archive.download"),
)
def get_archive(
    batch_id: str, service: BatchesDep, services: ServicesDep, caller: CallerDep
) -> StreamingResponse:
    """A ZIP of the finished items' audio with ``manifest.csv`` and ``manifest.json`` (row,
    name, text, voice, seed, job id, file, SHA-256, engine version, duration, metadata),
    streamed as it is built. While the batch runs it holds the items done so far."""
    batch = service.store.get(batch_id, caller.scope)
    body = stream_archive(service.store, batch, lambda job: output_chunks(services, job))
    return StreamingResponse(
        body,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="batch_{batch.id}.zip"'},
    )
