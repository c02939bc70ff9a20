"""Job routes: submit, read, list, download, cancel."""

from __future__ import annotations

from functools import partial
from pathlib import Path, PurePosixPath
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse

from steadyvoice.api.conversions import Source, attachment, open_unlinked, read_then_close
from steadyvoice.api.cursor import decode_cursor, encode_cursor
from steadyvoice.api.deps import CallerDep, ServicesDep, note_object
from steadyvoice.api.downloads import (
    DownloadFile,
    local_output,
    output_filename,
    output_response,
)
from steadyvoice.api.policy import allow
from steadyvoice.api.schemas import (
    AUDIO_CONTENT,
    JobCreate,
    JobOut,
    JobPage,
    Timestamp,
    error_responses,
)
from steadyvoice.audio.formats import CONTENT_TYPES, EXTENSIONS
from steadyvoice.errors import AudioNotReady, InvalidRequest
from steadyvoice.jobs.states import JobStatus
from steadyvoice.observability import metrics
from steadyvoice.observability.logs import request_id_var
from steadyvoice.security.principal import Role
from steadyvoice.settings import AudioFormat
from steadyvoice.storage.retention import not_purged

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
ERRORS = error_responses(404, 409, 410, 413, 422)


@router.post(
    "",
    status_code=202,
    response_model=JobOut,
    responses=ERRORS,
    openapi_extra=allow(Role.OPERATOR, audit="job.create"),
)
def create_job(
    body: JobCreate,
    services: ServicesDep,
    caller: CallerDep,
    request: Request,
    response: Response,
    # No control characters: servers refuse them in headers, PostgreSQL refuses NUL in text.
    idempotency_key: Annotated[
        str | None, Header(max_length=256, pattern=r"^[^\x00-\x1f\x7f]*$")
    ] = None,
) -> JobOut:
    """Queue a synthesis job. Answers 202 at once; poll the job or its ``Location``.

    ``X-SteadyVoice-Live-Workers`` counts the workers alive now: with 0 the job waits in the
    queue until one starts.

    A repeated request with the same ``Idempotency-Key`` returns the first job, not a new one.
    """
    req = body.job_request()
    job, _ = services.jobs.submit(req, caller, request_id_var.get(), idempotency_key)
    note_object(request, job.id)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    # 0: queued all the same (the queue is durable), but nothing runs it until a worker starts.
    live = services.workers.live(services.settings.jobs.worker_ready_seconds)
    response.headers["X-SteadyVoice-Live-Workers"] = str(len(live))
    return JobOut.of(job)


@router.get("", response_model=JobPage, responses=ERRORS, openapi_extra=allow(Role.VIEWER))
def list_jobs(
    services: ServicesDep,
    caller: CallerDep,
    status: JobStatus | None = None,
    created_after: Timestamp | None = None,
    created_before: Timestamp | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> JobPage:
    """Jobs, newest first, filtered by status and creation time; follow ``next_cursor``."""
    for value, name in ((created_after, "created_after"), (created_before, "created_before")):
        if value is not None and value.tzinfo is None:
            raise InvalidRequest(f"{name} needs a timezone (e.g. Z)", field=name)
    before = decode_cursor(cursor) if cursor else None
    jobs = services.store.list_jobs(
        status=status,
        created_after=created_after,
        created_before=created_before,
        before=before,
        limit=limit,
        tenant=caller.scope,
    )
    nxt = encode_cursor(jobs[-1].created_at, jobs[-1].id) if len(jobs) == limit else None
    return JobPage(items=[JobOut.of(j) for j in jobs], next_cursor=nxt)


@router.get("/{job_id}", response_model=JobOut, responses=ERRORS, openapi_extra=allow(Role.VIEWER))
def get_job(job_id: str, services: ServicesDep, caller: CallerDep) -> JobOut:
    """One job with its status, timings, error and output checksum."""
    return JobOut.of(services.store.get(job_id, caller.scope))


@router.get(
    "/{job_id}/audio",
    response_class=FileResponse,
    responses={200: {"content": AUDIO_CONTENT}, **error_responses(404, 409, 410, 413, 422, 503)},
    openapi_extra=allow(Role.VIEWER, audit="job.audio.download"),
)
async def get_audio(
    job_id: str,
    services: ServicesDep,
    caller: CallerDep,
    fmt: Annotated[
        AudioFormat | None,
        Query(
            alias="format",
            description="Convert to this format (default: the job's own, as stored).",
        ),
    ] = None,
) -> Response:
    """The generated audio file, once the job has succeeded. Every download is audited.

    The stored file comes with ``X-Content-SHA256``. Asked in another ``format``, it is
    decoded and encoded again (at the job's sample rate; lossy to lossy loses more): that
    answer has ``X-Converted-From`` (the stored format) and ``X-Source-SHA256`` (the stored
    file's checksum) instead, since the converted bytes are not what was stored, and
    ``X-Conversion-Cache`` (``hit`` or ``miss``). Conversions run in a pool of their own,
    ``conversion.workers`` at once: beyond it (and ``conversion.queue``) the answer is 503
    ``busy`` with ``Retry-After``. A converted file is cached, so a repeat costs nothing.
    """
    # Async, so that a download waiting for a conversion holds no thread of the default pool
    # (authentication and cheap reads run there); the reads below are quick.
    job = await anyio.to_thread.run_sync(services.store.get, job_id, caller.scope)
    if job.status != JobStatus.SUCCEEDED.value:
        raise AudioNotReady(
            f"job is {job.status}; audio exists only once it succeeded", status=job.status
        )
    stored = str(job.params.get("format", "wav"))
    filename = output_filename(job)
    if fmt is None or fmt == stored:
        sha = {"X-Content-SHA256": job.sha256 or ""}
        return await output_response(services, job, CONTENT_TYPES[stored], sha, filename)
    not_purged(job)  # before the cache: no copy outlives the retention policy
    # The path comes from the fetch, once the cache missed and the conversion was admitted:
    # a hit or a busy answer downloads nothing from an object store.
    source = Source(job.id, Path(job.output_name), stored, job.sample_rate or 0, job.sha256)
    fetch = partial(local_output, services, job)
    converted = await services.conversions.get(source, fmt, fetch)
    name = f"{PurePosixPath(filename).stem}.{EXTENSIONS[fmt]}"
    headers = {
        "X-Converted-From": stored,
        "X-Source-SHA256": job.sha256 or "",
        "X-Conversion-Cache": "hit" if converted.cache_hit else "miss",
    }
    if converted.temporary:
        # Not cached (conversion.cache_bytes=0): open, then unlink at once, so the file goes
        # whether the client reads it all or hangs up.
        fh = open_unlinked(converted.path)
        return StreamingResponse(
            read_then_close(fh),
            media_type=CONTENT_TYPES[fmt],
            headers={**headers, **attachment(name, fh)},
        )
    return DownloadFile(
        converted.path, media_type=CONTENT_TYPES[fmt], filename=name, headers=headers
    )


@router.post(
    "/{job_id}/cancel",
    response_model=JobOut,
    responses=ERRORS,
    openapi_extra=allow(Role.OPERATOR, audit="job.cancel"),
)
def cancel_job(job_id: str, services: ServicesDep, caller: CallerDep) -> JobOut:
    """Cancel a queued or running job. Finished jobs answer 409 ``job_not_cancelable``."""
    job = services.store.cancel(job_id, caller.scope)
    metrics.observe_finished(job, services.settings.slo)
    return JobOut.of(job)
