"""Voices: the tenant's profiles; upload or record a reference with consent and transcript,
see its validation check by check; play a reference, try a profile, delete one.

Uploads go through the API's own :class:`~steadyvoice.voices.profiles.VoiceService` with the
caller's key and tenant, audited as ``voice.create`` like ``POST /v1/voices``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Annotated

from fastapi import File, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from steadyvoice.api.deps import ServicesDep, note_object
from steadyvoice.api.policy import allow, call_state
from steadyvoice.console import checks
from steadyvoice.console.routing import console_router
from steadyvoice.console.templates import render
from steadyvoice.console.visit import PREFIX, Visit, VisitDep
from steadyvoice.errors import ConsentMissing, OutputMissing, ReferenceUnreadable, SteadyVoiceError
from steadyvoice.observability.logs import request_id_var
from steadyvoice.security.principal import Role
from steadyvoice.voices.profiles import MEDIA_TYPES, NewVoice, reference_too_large

router = console_router()
VOICES = f"{PREFIX}/voices"
LISTED = 200
SAMPLE = "Hello. This is how this voice sounds reading a short sample sentence."


@dataclass(frozen=True)
class UploadForm:
    """The text fields as typed, so a refused upload comes back as the person left them."""

    name: str = ""
    transcript: str = ""
    language: str = ""
    consent: str = ""


@router.get(VOICES, openapi_extra=allow(Role.VIEWER))
def voices_page(request: Request, services: ServicesDep, visit: VisitDep) -> HTMLResponse:
    """The tenant's voice profiles, and (operators) the upload form."""
    return _list(request, services, visit, UploadForm())


@router.post(VOICES, openapi_extra=allow(Role.OPERATOR, audit="voice.create"))
def upload(
    request: Request,
    services: ServicesDep,
    visit: VisitDep,
    audio: Annotated[UploadFile | None, File()] = None,
    name: Annotated[str, Form(max_length=1000)] = "",
    transcript: Annotated[str, Form(max_length=100_000)] = "",
    language: Annotated[str, Form(max_length=16)] = "",
    consent: Annotated[str, Form(max_length=100_000)] = "",
    consent_given: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Create a profile from an uploaded or recorded reference, as ``POST /v1/voices``."""
    form = UploadForm(name, transcript, language, consent)
    try:
        new = _new_voice(services, visit, form, audio, consent_given == "yes")
        voice = services.voices.create(new)
    except SteadyVoiceError as exc:
        if exc.status >= 500:
            raise
        call_state(request.scope).error_code = exc.code
        found = checks.refused(exc, services.settings.voices)
        return _list(request, services, visit, form, error=exc, found=found, status=exc.status)
    note_object(request, voice.id)
    return RedirectResponse(f"{VOICES}/{voice.id}?new=1", status_code=303)


@router.get(f"{VOICES}/{{voice_id}}", openapi_extra=allow(Role.VIEWER))
def voice_page(
    voice_id: str, request: Request, services: ServicesDep, visit: VisitDep, new: bool = False
) -> HTMLResponse:
    """One profile: its checks with their figures, its consent, play, try, delete."""
    voice = services.voices.get(voice_id, visit.principal.scope)
    return render(
        request,
        "voice.html",
        voice=voice,
        checks=checks.accepted(voice, services.settings.voices),
        new=new,
        sample=SAMPLE,
    )


@router.get(
    f"{VOICES}/{{voice_id}}/reference",
    openapi_extra=allow(Role.OPERATOR, audit="voice.reference.download"),
)
def reference(voice_id: str, services: ServicesDep, visit: VisitDep) -> FileResponse:
    """The reference as uploaded (operators and admins: it is a person's voice), audited."""
    voice = services.voices.get(voice_id, visit.principal.scope)
    path = services.voices.reference_path(voice)
    if not path.is_file():
        raise OutputMissing("the reference file is missing from storage", voice_id=voice.id)
    ext = voice.reference_name.rsplit(".", 1)[-1]
    media = MEDIA_TYPES.get(ext, "application/octet-stream")
    sha = {"X-Content-SHA256": voice.reference_sha256}
    return FileResponse(path, media_type=media, headers=sha)


@router.post(
    f"{VOICES}/{{voice_id}}/delete", openapi_extra=allow(Role.OPERATOR, audit="voice.delete")
)
def delete(voice_id: str, services: ServicesDep, visit: VisitDep) -> RedirectResponse:
    """Delete a profile (its record stays, as with ``DELETE /v1/voices/{id}``)."""
    services.voices.delete(voice_id, visit.principal.key_id, visit.principal.scope)
    return RedirectResponse(VOICES, status_code=303)


def _new_voice(
    services: ServicesDep,
    visit: Visit,
    form: UploadForm,
    audio: UploadFile | None,
    consent_given: bool,
) -> NewVoice:
    if not consent_given:
        raise ConsentMissing(
            "tick the box to confirm the speaker agreed to this use of their voice"
        )
    if audio is None or not audio.filename:
        raise ReferenceUnreadable("choose a recording to upload, or record one")
    limits = services.settings.voices
    data = audio.file.read(limits.max_upload_bytes + 1)
    if len(data) > limits.max_upload_bytes:
        raise reference_too_large(audio.file.seek(0, os.SEEK_END), limits)
    return NewVoice(
        name=form.name,
        consent=form.consent,
        audio=data,
        transcript=form.transcript or None,
        language=form.language or None,
        requester=visit.principal.key_id,
        request_id=request_id_var.get(),
        tenant=visit.principal.tenant,
    )


def _list(
    request: Request,
    services: ServicesDep,
    visit: Visit,
    form: UploadForm,
    *,
    error: SteadyVoiceError | None = None,
    found: list[checks.Check] | None = None,
    status: int = 200,
) -> HTMLResponse:
    profiles = services.voices.list_voices(False, None, LISTED, visit.principal.scope)
    limits = services.settings.voices
    return render(
        request,
        "voices.html",
        status=status,
        profiles=profiles,
        form=asdict(form),
        error=error,
        checks=found or [],
        limits=limits,
        max_mb=limits.max_upload_bytes / (1024 * 1024),
    )
