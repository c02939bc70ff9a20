"""One job in the console: its live panel (status, player, record) and its audio.

Shared by the pages that show a job (Speak, the record). The audio routes answer with the
stored file through the API's own download code, audited like the API's download.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import Query, Request, Response
from fastapi.responses import HTMLResponse

from steadyvoice.api.deps import Services, ServicesDep
from steadyvoice.api.downloads import output_filename, output_response
from steadyvoice.api.policy import allow
from steadyvoice.audio.formats import CONTENT_TYPES
from steadyvoice.console.routing import console_router
from steadyvoice.console.templates import render
from steadyvoice.console.visit import PREFIX, VisitDep
from steadyvoice.errors import AudioNotReady, JobNotFound
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.states import TERMINAL, JobStatus
from steadyvoice.security.principal import Role

router = console_router()
JOBS = f"{PREFIX}/jobs"
# Formats an <audio> element plays; raw PCM has no header to tell it how.
PLAYABLE = frozenset({"wav", "mp3", "flac", "opus", "aac"})


def job_panel(request: Request, job: Job, previous: Job | None = None) -> HTMLResponse:
    """The panel fragment: status (while it runs, the page's script asks again), then the
    player, the download and the record. ``previous``: the job this one repeats."""
    return render(request, "job_panel.html", **panel_context(job, previous))


def panel_context(job: Job, previous: Job | None = None) -> dict[str, Any]:
    fmt = str(job.params.get("format", "wav"))
    return {
        "job": job,
        "fmt": fmt,
        "playable": fmt in PLAYABLE,
        "done": JobStatus(job.status) in TERMINAL,
        "succeeded": job.status == JobStatus.SUCCEEDED.value,
        "previous": previous,
    }


def find_job(services: Services, visit_scope: str | None, job_id: str) -> Job:
    """The job if the caller's tenant may see it; ``job_not_found`` (404) otherwise."""
    return services.store.get(job_id, visit_scope)


@router.get(f"{JOBS}/{{job_id}}/panel", openapi_extra=allow(Role.VIEWER))
def panel(
    job_id: str,
    request: Request,
    services: ServicesDep,
    visit: VisitDep,
    previous: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    """The job's panel alone, for the page's script to swap in while the job runs."""
    scope = visit.principal.scope
    job = find_job(services, scope, job_id)
    return job_panel(request, job, previous_job(services, scope, previous))


@router.get(f"{JOBS}/{{job_id}}/audio", openapi_extra=allow(Role.VIEWER, audit="job.audio.play"))
async def play(job_id: str, services: ServicesDep, visit: VisitDep) -> Response:
    """The stored audio, inline, for the page's player."""
    return await _audio(services, visit.principal.scope, job_id, attachment=False)


@router.get(
    f"{JOBS}/{{job_id}}/download", openapi_extra=allow(Role.VIEWER, audit="job.audio.download")
)
async def download(job_id: str, services: ServicesDep, visit: VisitDep) -> Response:
    """The stored audio as a file, byte for byte what the record's SHA-256 describes."""
    return await _audio(services, visit.principal.scope, job_id, attachment=True)


async def _audio(
    services: Services, scope: str | None, job_id: str, *, attachment: bool
) -> Response:
    job = await anyio.to_thread.run_sync(find_job, services, scope, job_id)
    if job.status != JobStatus.SUCCEEDED.value:
        raise AudioNotReady(
            f"job is {job.status}; audio exists only once it succeeded", status=job.status
        )
    fmt = str(job.params.get("format", "wav"))
    headers = {"X-Content-SHA256": job.sha256 or ""}
    name = output_filename(job) if attachment else None
    # Streamed through, never a presigned redirect: the page's CSP allows media from itself.
    return await output_response(services, job, CONTENT_TYPES[fmt], headers, name, presign=False)


def previous_job(services: Services, scope: str | None, job_id: str | None) -> Job | None:
    """The job a repeat is compared with, if the caller may see it (else no comparison)."""
    if not job_id:
        return None
    try:
        return find_job(services, scope, job_id)
    except JobNotFound:
        return None
