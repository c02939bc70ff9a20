"""OpenAI-compatible routes: ``POST /v1/audio/speech``, ``GET /v1/models``, ``/v1/audio/voices``.

A speech call is a job like any other (recorded, audited, run by a worker, checksummed); the call
waits for it (docs/openai.md). By default the audio goes out sentence by sentence as the worker
publishes it (:mod:`.stream`); with ``stream: false`` the answer is the stored file once the job
has succeeded (:mod:`.wait`). What the request means: :mod:`.request`; when a call is refused
before its job is recorded: :mod:`.availability`.
"""

from __future__ import annotations

import functools
import time
from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Query, Request, Response

from steadyvoice.api.deps import CallerDep, Services, ServicesDep, note_object
from steadyvoice.api.downloads import output_response
from steadyvoice.api.policy import allow
from steadyvoice.api.schemas import AUDIO_CONTENT, error_responses
from steadyvoice.api.shutdown import Shutdown, shutdown_of
from steadyvoice.api.speech.availability import answerable
from steadyvoice.api.speech.request import (
    IGNORED_HEADER,
    ignored_header,
    model_names,
    resolve_voice,
    speech_request,
)
from steadyvoice.api.speech.schemas import (
    ModelList,
    ModelOut,
    SpeechCreate,
    SpeechVoiceList,
    SpeechVoiceOut,
)
from steadyvoice.api.speech.stream import ChunkFeed, Marks, SpeechStream, State, first_step
from steadyvoice.api.speech.wait import (
    Poller,
    audio_headers,
    ended_without_audio,
    gave_up,
    wait_finished,
    watching,
)
from steadyvoice.audio.formats import CONTENT_TYPES
from steadyvoice.jobs.chunks import ChunkStore
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.states import TERMINAL, JobStatus
from steadyvoice.languages.voices import listed_languages
from steadyvoice.observability import metrics
from steadyvoice.observability.logs import request_id_var
from steadyvoice.security.principal import Role
from steadyvoice.settings import OPENAI_VOICES

router = APIRouter(tags=["openai"])
OWNER = "steadyvoice"
SPEECH_RESPONSES = {
    200: {
        "content": AUDIO_CONTENT,
        "description": "The audio in ``response_format``; headers ``X-Job-ID``, "
        "``X-Sample-Rate``, ``X-SteadyVoice-Ignored-Fields`` (if any) and, when not streamed, "
        "``X-Content-SHA256``.",
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

    Streams by default (``stream: false``: the stored file, whole). A stream that ends without
    its terminating chunk is incomplete (the job failed or was canceled); leaving mid-stream
    cancels the job, unless the call has an ``Idempotency-Key``: then the job goes on, and a
    repeat gets its audio (streamed while it runs, the stored file once it is done). ``pcm`` is
    24 kHz. Waits up to ``speech.wait_seconds`` for the job (504
    ``speech_timeout`` after that; the job goes on). No live worker: 503 ``no_live_worker`` at
    once; a server shutting down: 503 ``shutting_down``. Fields that are none of ours are
    ignored and named in ``X-SteadyVoice-Ignored-Fields``. Every call is a job: ``X-Job-ID``.
    """
    started = time.perf_counter()
    shutdown = shutdown_of(request.app)
    req = speech_request(body, services.settings, services.engine)
    submit = functools.partial(services.jobs.submit, precondition=answerable(services, shutdown))
    job, created = await anyio.to_thread.run_sync(
        submit, req, caller, request_id_var.get(), idempotency_key
    )
    note_object(request, job.id)
    if req.stream and (created or JobStatus(job.status) not in TERMINAL):
        marks = Marks(started, submitted=time.perf_counter())
        response = await _streamed(services, job, marks, shutdown, created)
    else:
        response = await _whole(services, job, started, shutdown, created)
    ignored = ignored_header(body)
    if ignored is not None:
        response.headers[IGNORED_HEADER] = ignored
    return response


async def _whole(
    services: Services, job: Job, started: float, shutdown: Shutdown, created: bool = False
) -> Response:
    speech = services.settings.speech
    done = await wait_finished(
        services.store,
        job.id,
        speech.poll_seconds,
        speech.wait_seconds,
        services.progress,
        shutdown,
        pending=created,
    )
    return await _file_of(services, done, started)


async def _file_of(services: Services, job: Job, started: float) -> Response:
    if job.status != JobStatus.SUCCEEDED.value:
        raise ended_without_audio(job)
    media_type = CONTENT_TYPES[str(job.params.get("format", "wav"))]
    # Streamed through even with storage.presign: a POST cannot follow a redirect to a GET URL.
    response = await output_response(services, job, media_type, audio_headers(job), presign=False)
    metrics.observe_first_audio(time.perf_counter() - started, streamed=False)
    return response


async def _streamed(
    services: Services, job: Job, marks: Marks, shutdown: Shutdown, created: bool
) -> Response:
    speech = services.settings.speech
    fmt = str(job.params.get("format", speech.default_format))
    rate = job.params.get("output_rate")
    feed = ChunkFeed(
        services.store,
        ChunkStore(services.store),
        job.id,
        fmt,
        output_rate=None if rate is None else int(rate),
    )
    with watching(services.progress, job.id) as watch:
        poller = Poller(speech.poll_seconds, speech.wait_seconds, watch, shutdown)
        first = await first_step(feed, poller, pending=created)
    marks.read = time.perf_counter()
    if first.state is State.IDLE:
        assert first.job is not None
        raise gave_up(first.job, speech.wait_seconds, poller)
    if first.state in (State.ENDED, State.NO_CHUNKS):
        # Failed before any audio: a proper error. No chunks to stream (a repeated request
        # whose stream was already sent and its chunks deleted): the stored file, once there.
        assert first.job is not None
        job = first.job
        if JobStatus(job.status) not in TERMINAL:
            return await _whole(services, job, marks.started, shutdown)
        return await _file_of(services, job, marks.started)
    return SpeechStream(
        feed,
        first,
        services.settings,
        marks,
        CONTENT_TYPES[fmt],
        services.progress,
        shutdown,
        shared=job.idempotency_key is not None,
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
    speaks = functools.partial(listed_languages, engine)
    voices = [SpeechVoiceOut(id=v, kind="engine", speaks_as=v, languages=speaks(v)) for v in own]
    for name in dict.fromkeys([*OPENAI_VOICES, *voice_map]):
        if name in voice_map or name not in own:
            to = resolve_voice(name, services.settings, engine)
            openai = SpeechVoiceOut(id=name, kind="openai", speaks_as=to, languages=speaks(to))
            voices.append(openai)
    profiles = services.voices.list_voices(False, None, limit, caller.scope)
    voices += [
        SpeechVoiceOut(
            id=p.id,
            kind="profile",
            speaks_as=default,
            name=p.name,
            languages=speaks(default),
            language=p.language,
        )
        for p in profiles
    ]
    return SpeechVoiceList(engine=engine.name, default_voice=default, voices=voices)
