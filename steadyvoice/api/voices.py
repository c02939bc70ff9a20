"""Voice profile routes: upload a reference with consent, list, read, delete, download."""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse

from steadyvoice.api.cursor import decode_cursor, encode_cursor
from steadyvoice.api.deps import CallerDep, ServicesDep, note_object
from steadyvoice.api.policy import allow
from steadyvoice.api.schemas import VoiceOut, VoicePage, error_responses
from steadyvoice.errors import OutputMissing
from steadyvoice.observability.logs import request_id_var
from steadyvoice.security.principal import Role
from steadyvoice.voices.profiles import MEDIA_TYPES, NewVoice, reference_too_large

router = APIRouter(prefix="/v1/voices", tags=["voices"])
ERRORS = error_responses(404, 410, 413, 422)


@router.post(
    "",
    status_code=201,
    response_model=VoiceOut,
    responses=ERRORS,
    openapi_extra=allow(Role.OPERATOR, audit="voice.create"),
)
def create_voice(
    services: ServicesDep,
    caller: CallerDep,
    request: Request,
    response: Response,
    audio: Annotated[
        UploadFile, File(description="Reference recording: WAV, FLAC, OGG or MP3, 3 to 30 s.")
    ],
    name: Annotated[str, Form(description="A label for people; need not be unique.")] = "",
    consent: Annotated[
        str, Form(description="The speaker's consent: who agreed, to what, and when.")
    ] = "",
    transcript: Annotated[
        str | None, Form(description="What is said in the recording (optional).")
    ] = None,
    language: Annotated[
        str | None,
        Form(
            description="The language spoken in the recording (``en``, ``zh``...; optional: "
            "detected from the transcript when left out)."
        ),
    ] = None,
) -> VoiceOut:
    """Create a voice profile. The recording is checked before anything is stored: sample
    rate, mono, speech duration, level, clipping and noise, each refused with its own code."""
    limits = services.settings.voices
    data = audio.file.read(limits.max_upload_bytes + 1)
    if len(data) > limits.max_upload_bytes:  # the body is in already: measure all of it
        raise reference_too_large(audio.file.seek(0, os.SEEK_END), limits)
    new = NewVoice(
        name=name,
        consent=consent,
        audio=data,
        transcript=transcript,
        language=language,
        requester=caller.key_id,
        request_id=request_id_var.get(),
        tenant=caller.tenant,
    )
    voice = services.voices.create(new)
    note_object(request, voice.id)
    response.headers["Location"] = f"/v1/voices/{voice.id}"
    return VoiceOut.of(voice)


@router.get("", response_model=VoicePage, responses=ERRORS, openapi_extra=allow(Role.VIEWER))
def list_voices(
    services: ServicesDep,
    caller: CallerDep,
    include_deleted: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> VoicePage:
    """Voice profiles, newest first; deleted ones only with ``include_deleted=true``."""
    before = decode_cursor(cursor) if cursor else None
    voices = services.voices.list_voices(include_deleted, before, limit, caller.scope)
    nxt = encode_cursor(voices[-1].created_at, voices[-1].id) if len(voices) == limit else None
    return VoicePage(items=[VoiceOut.of(v) for v in voices], next_cursor=nxt)


@router.get(
    "/{voice_id}", response_model=VoiceOut, responses=ERRORS, openapi_extra=allow(Role.VIEWER)
)
def get_voice(voice_id: str, services: ServicesDep, caller: CallerDep) -> VoiceOut:
    """One voice profile, deleted or not (deleted profiles stay on record)."""
    return VoiceOut.of(services.voices.get(voice_id, caller.scope))


@router.delete(
    "/{voice_id}",
    response_model=VoiceOut,
    responses=ERRORS,
    openapi_extra=allow(Role.OPERATOR, audit="voice.delete"),
)
def delete_voice(voice_id: str, services: ServicesDep, caller: CallerDep) -> VoiceOut:
    """Delete a profile: new jobs naming it are refused with ``voice_deleted``; jobs made
    with it, and the profile's record, stay readable."""
    return VoiceOut.of(services.voices.delete(voice_id, caller.key_id, caller.scope))


@router.get(
    "/{voice_id}/reference",
    response_class=FileResponse,
    responses={200: {"content": {t: {} for t in MEDIA_TYPES.values()}}, **ERRORS},
    openapi_extra=allow(Role.OPERATOR, audit="voice.reference.download"),
)
def get_reference(voice_id: str, services: ServicesDep, caller: CallerDep) -> FileResponse:
    """The reference recording exactly as uploaded; ``X-Content-SHA256`` is its checksum.

    A speaker's recording is biometric data: operators and admins only, every download audited.
    """
    voice = services.voices.get(voice_id, caller.scope)
    path = services.voices.reference_path(voice)
    if not path.is_file():
        raise OutputMissing("the reference file is missing from storage", voice_id=voice.id)
    ext = voice.reference_name.rsplit(".", 1)[-1]
    return FileResponse(
        path,
        media_type=MEDIA_TYPES.get(ext, "application/octet-stream"),
        filename=f"{voice.id}.{ext}",
        headers={"X-Content-SHA256": voice.reference_sha256},
    )
