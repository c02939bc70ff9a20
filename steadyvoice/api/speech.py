"""OpenAI-compatible routes: ``POST /v1/audio/speech``, ``GET /v1/models``, ``/v1/audio/voices``.

A speech call is a job like any other (recorded, audited, run by a worker, checksummed); the call
waits for it (docs/openai.md). Without ``stream`` the answer is the stored file once the job has
succeeded; with it, the audio goes out sentence by sentence as the worker publishes it
(:mod:`steadyvoice.api.speech_stream`).
"""

from __future__ import annotations

import time
from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Query, Request, Response

from steadyvoice.api.deps import CallerDep, Services, ServicesDep, note_object
from steadyvoice.api.jobs import stored_output
from steadyvoice.api.policy import allow
from steadyvoice.api.schemas import error_responses
from steadyvoice.api.speech_schemas import (
    AUDIO_CONTENT,
    ModelList,
    ModelOut,
    SpeechCreate,
    SpeechVoiceList,
    SpeechVoiceOut,
    VoiceRef,
)
from steadyvoice.api.speech_stream import ChunkFeed, Marks, SpeechStream, State, first_step
from steadyvoice.api.speech_wait import (
    audio_file,
    ended_without_audio,
    timed_out,
    wait_finished,
    watching,
)
from steadyvoice.audio.formats import CONTENT_TYPES
from steadyvoice.engines.base import Engine
from steadyvoice.errors import InvalidRequest, UnknownModel
from steadyvoice.jobs.chunks import ChunkStore
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.states import TERMINAL, JobStatus
from steadyvoice.jobs.submit import JobRequest
from steadyvoice.observability import metrics
from steadyvoice.observability.logs import request_id_var
from steadyvoice.security.principal import Role
from steadyvoice.settings import OPENAI_VOICES, Settings
from steadyvoice.voices.profiles import is_profile_id

router = APIRouter(tags=["openai"])
OWNER = "steadyvoice"
SPEECH_RESPONSES = {
    200: {
        "content": AUDIO_CONTENT,
        "description": "The audio in ``response_format``; headers ``X-Job-ID``, "
        "``X-Sample-Rate`` and, unless streamed, ``X-Content-SHA256``.",
    },
    **error_responses(409, 410, 413, 422, 502, 503, 504),
}


@router.post(
    "/v1/audio/speech",
    response_class=Response,
    responses=SPEECH_RESPONSES,
    openapi_extra=allow(Role.OPERATOR, audit="speech.create"),
)
async def create_speech(
    body: SpeechCreate,
    services: ServicesDep,
    caller: CallerDep,
    request: Request,
    idempotency_key: Annotated[
        str | None, Header(max_length=256, pattern=r"^[^\x00-\x1f\x7f]*$")
    ] = None,
) -> Response:
    """Text to speech, OpenAI style: queues a job and answers with its audio.

    Waits up to ``speech.wait_seconds`` for the job (504 ``speech_timeout`` after that; the job
    goes on). With ``stream`` the audio is sent as it is made; a stream that ends without its
    terminating chunk is incomplete (the job failed or was canceled). Leaving mid-stream cancels
    the job. Every call is a job: ``X-Job-ID`` names it.
    """
    started = time.perf_counter()
    stream = body.stream if body.stream is not None else _chunked(request)
    req = speech_request(body, services.settings, services.engine, stream=stream)
    job, _ = await anyio.to_thread.run_sync(
        services.jobs.submit, req, caller, request_id_var.get(), idempotency_key
    )
    note_object(request, job.id)
    if stream:
        return await _streamed(services, job, Marks(started, submitted=time.perf_counter()))
    return await _whole(services, job, started)


def speech_request(
    body: SpeechCreate, settings: Settings, engine: Engine, stream: bool
) -> JobRequest:
    """The job an OpenAI-style request asks for (the model and voice names resolved)."""
    if body.model not in settings.speech.models and body.model != engine.name:
        raise UnknownModel(
            f"unknown model {body.model!r}; see GET /v1/models",
            model=body.model,
            available=model_names(settings, engine),
        )
    if body.stream_format == "sse":
        raise InvalidRequest(
            "stream_format 'sse' is not supported: audio is streamed as raw bytes "
            "(stream_format 'audio', with stream: true)",
            field="stream_format",
            supported=["audio"],
        )
    return JobRequest(
        text=body.input,
        voice=resolve_voice(body.voice, settings, engine),
        seed=body.seed,
        speed=body.speed,
        format=body.response_format or settings.speech.default_format,
        instructions=body.instructions,
        stream=stream,
        normalize=body.normalize,
    )


def resolve_voice(voice: str | VoiceRef, settings: Settings, engine: Engine) -> str:
    """A voice profile id or engine voice as it is; an OpenAI name through ``speech.voice_map``
    (names it leaves out: the engine's default voice). Anything else is left for the job
    service to refuse (``unknown_voice``)."""
    name = voice.id if isinstance(voice, VoiceRef) else voice
    if is_profile_id(name):
        return name
    mapped = settings.speech.voice_map.get(name)
    if mapped is not None:
        return mapped
    if name in OPENAI_VOICES and name not in engine.voices():
        return engine.default_voice()
    return name


def model_names(settings: Settings, engine: Engine) -> list[str]:
    return list(dict.fromkeys([*settings.speech.models, engine.name]))


def _chunked(request: Request) -> bool:
    return "chunked" in request.headers.get("transfer-encoding", "").lower()


async def _whole(services: Services, job: Job, started: float) -> Response:
    speech = services.settings.speech
    done = await wait_finished(
        services.store, job.id, speech.poll_seconds, speech.wait_seconds, services.progress
    )
    return _file_of(services, done, started)


def _file_of(services: Services, job: Job, started: float) -> Response:
    if job.status != JobStatus.SUCCEEDED.value:
        raise ended_without_audio(job)
    response = audio_file(job, stored_output(services, job))
    metrics.observe_first_audio(time.perf_counter() - started, streamed=False)
    return response


async def _streamed(services: Services, job: Job, marks: Marks) -> Response:
    speech = services.settings.speech
    fmt = str(job.params.get("format", speech.default_format))
    feed = ChunkFeed(services.store, ChunkStore(services.store), job.id, fmt)
    with watching(services.progress, job.id) as watch:
        first = await first_step(feed, speech.poll_seconds, speech.wait_seconds, watch)
    marks.read = time.perf_counter()
    if first.state is State.IDLE:
        assert first.job is not None
        raise timed_out(first.job, speech.wait_seconds)
    if first.state in (State.ENDED, State.NO_CHUNKS):
        # Failed before any audio: a proper error. No chunks to stream (a repeated request
        # whose stream was already sent and its chunks deleted): the stored file, once there.
        assert first.job is not None
        job = first.job
        if JobStatus(job.status) not in TERMINAL:
            job = await wait_finished(
                services.store, job.id, speech.poll_seconds, speech.wait_seconds, services.progress
            )
        return _file_of(services, job, marks.started)
    return SpeechStream(
        feed, first, services.settings, marks, CONTENT_TYPES[fmt], services.progress
    )


@router.get(
    "/v1/models",
    response_model=ModelList,
    responses=error_responses(),
    openapi_extra=allow(Role.VIEWER),
)
def list_models(services: ServicesDep) -> ModelList:
    """The model names ``POST /v1/audio/speech`` takes: all are the configured engine."""
    names = model_names(services.settings, services.engine)
    return ModelList(data=[ModelOut(id=n, created=0, owned_by=OWNER) for n in names])


@router.get(
    "/v1/audio/voices",
    response_model=SpeechVoiceList,
    responses=error_responses(422),
    openapi_extra=allow(Role.VIEWER),
)
def list_speech_voices(
    services: ServicesDep,
    caller: CallerDep,
    limit: Annotated[
        int, Query(ge=1, le=500, description="Voice profiles listed, newest first.")
    ] = 100,
) -> SpeechVoiceList:
    """Every name ``voice`` takes: the engine's voices, OpenAI's names with the engine voice
    each maps to, and the caller's active voice profiles (all of them: ``GET /v1/voices``)."""
    engine = services.engine
    default = engine.default_voice()
    voice_map = services.settings.speech.voice_map
    own = engine.voices()
    voices = [SpeechVoiceOut(id=v, kind="engine", speaks_as=v) for v in own]
    for name in dict.fromkeys([*OPENAI_VOICES, *voice_map]):
        if name in voice_map or name not in own:
            speaks_as = resolve_voice(name, services.settings, engine)
            voices.append(SpeechVoiceOut(id=name, kind="openai", speaks_as=speaks_as))
    profiles = services.voices.list_voices(False, None, limit, caller.scope)
    voices += [
        SpeechVoiceOut(id=p.id, kind="profile", speaks_as=default, name=p.name) for p in profiles
    ]
    return SpeechVoiceList(engine=engine.name, default_voice=default, voices=voices)
