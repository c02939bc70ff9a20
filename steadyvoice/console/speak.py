"""Speak: text, voice, seed, speed and format in; the job's status, audio and record out.

The form goes through the API's own submit path (:class:`~steadyvoice.jobs.submit.JobService`
with the caller's ``Principal``): the same checks, quotas, admission and audit action
(``job.create``) as ``POST /v1/jobs``. "Generate again" posts the same fields and shows
whether the new job's SHA-256 is the previous one's.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from steadyvoice.api.deps import ServicesDep, note_object
from steadyvoice.api.policy import allow, call_state
from steadyvoice.api.schemas import JobCreate
from steadyvoice.audio.formats import FORMATS
from steadyvoice.console.form_values import whole_number
from steadyvoice.console.jobs import find_job, panel_context, previous_job
from steadyvoice.console.routing import console_router
from steadyvoice.console.templates import render
from steadyvoice.console.visit import PREFIX, Visit, VisitDep
from steadyvoice.engines.base import DEFAULT_SEED
from steadyvoice.errors import InvalidRequest, SteadyVoiceError
from steadyvoice.jobs.models import Job
from steadyvoice.observability.logs import request_id_var
from steadyvoice.security.principal import Role

router = console_router()
_DECIMAL = re.compile(r"[0-9]{1,3}(\.[0-9]{0,6})?|\.[0-9]{1,6}")
SPEAK = f"{PREFIX}/speak"
PROFILES_SHOWN = 200


@dataclass(frozen=True)
class SpeakForm:
    """The form's fields as typed, so a refused form comes back as the person left it."""

    text: str = ""
    voice: str = ""
    seed: str = str(DEFAULT_SEED)
    speed: str = "1.0"
    format: str = "wav"

    @classmethod
    def of(cls, job: Job) -> SpeakForm:
        params = job.params
        return cls(
            text=job.text,
            voice=job.voice,
            seed=str(params.get("seed", DEFAULT_SEED)),
            speed=f"{float(params.get('speed', 1.0)):g}",
            format=str(params.get("format", "wav")),
        )

    def job_create(self) -> JobCreate:
        """The API's request body, or ``invalid_request`` naming the field in words."""
        seed = self.seed.strip()
        speed = self.speed.strip()
        # ASCII only: int() and float() also take "1_0", "٣", "nan" and "inf".
        if not _DECIMAL.fullmatch(speed):
            raise InvalidRequest("speed must be a number, e.g. 1.0", field="speed")
        try:
            return JobCreate(
                text=self.text,
                voice=self.voice or None,
                seed=whole_number(seed, "seed", max_digits=10) if seed else None,
                speed=float(speed),
                format=self.format,  # checked by the model
            )
        except ValidationError as exc:
            raise InvalidRequest(_in_words(exc), field=_field_of(exc)) from None


@router.get(SPEAK, openapi_extra=allow(Role.VIEWER))
def speak_page(request: Request, services: ServicesDep, visit: VisitDep) -> HTMLResponse:
    """The Speak form (operators and admins may submit; viewers see it read-only)."""
    return _page(request, services, visit, SpeakForm(voice=services.engine.default_voice()))


@router.post(SPEAK, openapi_extra=allow(Role.OPERATOR, audit="job.create"))
def speak(
    request: Request,
    services: ServicesDep,
    visit: VisitDep,
    text: Annotated[str, Form(max_length=1_000_000)] = "",
    voice: Annotated[str, Form(max_length=200)] = "",
    seed: Annotated[str, Form(max_length=20)] = "",
    speed: Annotated[str, Form(max_length=20)] = "1.0",
    format: Annotated[str, Form(max_length=10)] = "wav",
    previous: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Queue the job as ``POST /v1/jobs`` would, then show it."""
    form = SpeakForm(text, voice, seed, speed, format)
    try:
        body = form.job_create()
        job, _ = services.jobs.submit(body.job_request(), visit.principal, request_id_var.get())
    except SteadyVoiceError as exc:
        if exc.status >= 500:
            raise
        call_state(request.scope).error_code = exc.code
        return _page(request, services, visit, form, error=exc, status=exc.status)
    note_object(request, job.id)
    again = f"?{urlencode({'previous': previous})}" if previous else ""
    return RedirectResponse(f"{SPEAK}/{job.id}{again}", status_code=303)


@router.get(f"{SPEAK}/{{job_id}}", openapi_extra=allow(Role.VIEWER))
def speak_job(
    job_id: str,
    request: Request,
    services: ServicesDep,
    visit: VisitDep,
    previous: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    """A job beside the form that made it: status live, then player, download and record."""
    scope = visit.principal.scope
    job = find_job(services, scope, job_id)
    earlier = previous_job(services, scope, previous)
    return _page(request, services, visit, SpeakForm.of(job), job=job, previous=earlier)


def _page(
    request: Request,
    services: ServicesDep,
    visit: Visit,
    form: SpeakForm,
    *,
    job: Job | None = None,
    previous: Job | None = None,
    error: SteadyVoiceError | None = None,
    status: int = 200,
) -> HTMLResponse:
    profiles = services.voices.list_voices(False, None, PROFILES_SHOWN, visit.principal.scope)
    panel = panel_context(job, previous) if job is not None else {}
    return render(
        request,
        "speak.html",
        status=status,
        form=asdict(form),
        engine_voices=services.engine.voices(),
        profiles=profiles,
        formats=FORMATS,
        error=error,
        shown=job,
        **panel,
    )


def _in_words(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}"


def _field_of(exc: ValidationError) -> str:
    return ".".join(str(p) for p in exc.errors()[0]["loc"])
