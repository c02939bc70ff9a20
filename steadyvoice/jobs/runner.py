"""Run one claimed job: synthesize, encode, store atomically, record. Used by every dispatcher."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import numpy as np

from steadyvoice.audio.formats import encode, encoder_tag
from steadyvoice.audio.pcm import decode_pcm16, pcm16
from steadyvoice.engines.base import (
    DEFAULT_SEED,
    Audio,
    Engine,
    FloatAudio,
    StreamingEngine,
    SynthesisRequest,
    VoiceTarget,
)
from steadyvoice.engines.budget import capped, check_made
from steadyvoice.engines.interrupt import Abandoned, watching
from steadyvoice.errors import EngineError, SteadyVoiceError, StorageError
from steadyvoice.jobs.backoff import STORE_ERRORS, retry_store
from steadyvoice.jobs.chunks import ChunkStore
from steadyvoice.jobs.dispatch import Dispatcher, NullDispatcher
from steadyvoice.jobs.outcome import left_to_reaper, observe, record_failure, record_success
from steadyvoice.jobs.outputs import Staged, stage
from steadyvoice.jobs.states import JobStatus
from steadyvoice.jobs.store import Claim, JobStore, Result
from steadyvoice.jobs.watch import ClaimWatch
from steadyvoice.observability import metrics
from steadyvoice.observability.logs import event, job_context
from steadyvoice.settings import SloSettings
from steadyvoice.storage.backend import Storage

log = logging.getLogger("steadyvoice.runner")


class Profiles(Protocol):
    """Resolves a voice profile id for a job (``VoiceService`` in the service)."""

    def target_for(self, voice_id: str, tenant: str | None = None) -> VoiceTarget: ...

    def ids_named(self, name: str, tenant: str | None = None) -> list[str]:
        """Live profiles called ``name``: the hint when a job names a profile by name."""
        ...


def request_for(claim: Claim, profiles: Profiles | None = None) -> SynthesisRequest:
    """The engine request a job's record describes, with its voice profile resolved."""
    params = claim.job.params
    target = None
    profile = params.get("voice_profile")
    if isinstance(profile, dict):
        if profiles is None:
            raise EngineError("this worker cannot resolve voice profiles")
        target = profiles.target_for(str(profile["id"]))
        if target.reference_sha256 != profile.get("reference_sha256"):
            raise EngineError("the voice profile's reference changed since the job was accepted")
    instructions = params.get("instructions")
    return SynthesisRequest(
        text=claim.job.spoken_text or claim.job.text,
        voice=str(params.get("base_voice", claim.job.voice)),
        seed=int(params.get("seed", DEFAULT_SEED)),
        speed=float(params.get("speed", 1.0)),
        target=target,
        instructions=None if instructions is None else str(instructions),
        cross_lingual=bool(params.get("cross_lingual", False)),
    )


def encoded(audio: Audio, params: dict[str, Any]) -> tuple[bytes, int]:
    """A job's audio as the file it stores (its format, at its output rate), and that rate.

    ``steadyvoice synth`` encodes with this too, so that its bytes are a job's.
    """
    fmt = str(params.get("format", "wav"))
    output_rate = params.get("output_rate")  # e.g. OpenAI's 24 kHz pcm
    rate = audio.sample_rate if output_rate is None else int(output_rate)
    samples = audio.samples
    if rate != audio.sample_rate:
        # Resample the 16-bit audio a stream carries, so streamed or not, same bytes.
        samples = decode_pcm16(pcm16(samples, audio.sample_rate))
    return encode(samples, audio.sample_rate, fmt, output_rate=rate), rate


def run_claimed(
    claim: Claim,
    engine: Engine,
    store: JobStore,
    storage: Storage,
    profiles: Profiles | None = None,
    slo: SloSettings | None = None,
    news: Dispatcher | None = None,
    watch: ClaimWatch | None = None,
    max_audio_seconds: float | None = None,
) -> str:
    """Run the job and record the outcome; returns the status the job ended in.

    ``news`` is told the job id after each published chunk and once the outcome is recorded,
    so API calls waiting on the job read it at once (``dispatch.ProgressBell``). ``watch``
    (the worker's, which its lease heartbeat also tells) says whether the job is still ours:
    the engine checks it between sentences and stops once the job is canceled or taken back.
    Past ``max_audio_seconds`` of audio (``jobs.max_audio_seconds``; None: no cap) the job
    stops and fails with ``audio_too_long`` (:mod:`steadyvoice.engines.budget`).
    """
    news = news or NullDispatcher()
    watch = watch or ClaimWatch(store, claim)
    with capped(max_audio_seconds):
        status = _run(claim, engine, store, storage, profiles, slo, news, watch)
    news.notify(claim.job.id)
    return status


@dataclass(frozen=True)
class _Made:
    """A job's synthesized audio and the file it stores."""

    audio: Audio
    data: bytes
    rate: int
    version: str
    synthesis_seconds: float


def _run(
    claim: Claim,
    engine: Engine,
    store: JobStore,
    storage: Storage,
    profiles: Profiles | None,
    slo: SloSettings | None,
    news: Dispatcher,
    watch: ClaimWatch,
) -> str:
    job = claim.job
    with job_context(job.id, job.request_id):
        event(log, "job.started", attempt=claim.attempt, worker_id=claim.worker_id)
        metrics.observe_claimed(job, claim.attempt)
        started = time.perf_counter()
        try:
            made = _synthesize(claim, engine, store, profiles, news, watch)
            staged = _write(storage, claim, made.data)
        except Abandoned as stop:
            return _abandoned(stop, started)
        except SteadyVoiceError as exc:  # the engine's, the job's, or the disk's (storage_*)
            return record_failure(claim, store, exc.code, exc.message, watch)
        except STORE_ERRORS as exc:  # never an engine error: the database stayed away
            return left_to_reaper("synthesis", exc)
        except Exception as exc:
            log.exception("engine failure")
            message = f"{type(exc).__name__}: {exc}"
            return record_failure(claim, store, "engine_error", message, watch)
        audio_seconds = made.audio.duration_seconds
        result = Result(made.version, made.rate, audio_seconds, staged.sha256, staged.size)
        status = record_success(claim, store, staged, result, watch)
        if status == JobStatus.SUCCEEDED.value:
            staged.tidy()  # S3: the copy's source; on disk renamed away already
            event(
                log,
                "job.succeeded",
                seconds=round(time.perf_counter() - started, 4),
                audio_seconds=round(made.audio.duration_seconds, 3),
                sha256=staged.sha256,
            )
            observe(store, job.id, slo, made.synthesis_seconds)
        return status


def _synthesize(
    claim: Claim,
    engine: Engine,
    store: JobStore,
    profiles: Profiles | None,
    news: Dispatcher,
    watch: ClaimWatch,
) -> _Made:
    """Synthesize and encode. Store calls on the way (the voice profile, streamed chunks) ride
    out a database blip: their errors are never taken for the engine's."""
    job = claim.job
    request = retry_store(partial(request_for, claim, profiles), "voice_profile", watch)
    fmt = str(job.params.get("format", "wav"))
    adapted = request.target is not None
    version = engine.version(request.voice, adapted=adapted) + encoder_tag(fmt)
    engine_started = time.perf_counter()
    with watching(watch.check):
        if job.params.get("stream"):
            audio = _stream(claim, engine, request, ChunkStore(store), news, watch)
        else:
            audio = engine.synthesize(request)
        watch.check()  # not worth encoding if it was canceled meanwhile
        check_made(audio.duration_seconds)
    synthesis_seconds = time.perf_counter() - engine_started
    data, rate = encoded(audio, job.params)
    return _Made(audio, data, rate, version, synthesis_seconds)


def _write(storage: Storage, claim: Claim, data: bytes) -> Staged:
    """Stage the output durably (:mod:`steadyvoice.jobs.outputs`); a disk or object store that
    refuses (after the store's retries) fails the job with a storage code."""
    try:
        return stage(storage, claim, data)
    except StorageError as exc:
        event(log, "job.storage_failed", level=logging.WARNING, error_code=exc.code)
        raise
    except OSError as exc:
        event(log, "job.storage_failed", level=logging.WARNING, error_code=StorageError.code)
        raise StorageError(f"could not write the output: {exc.strerror or exc}") from exc


def _stream(
    claim: Claim,
    engine: Engine,
    request: SynthesisRequest,
    chunks: ChunkStore,
    news: Dispatcher,
    watch: ClaimWatch,
) -> Audio:
    """Synthesize chunk by chunk, publishing each one as it is made; the job's audio is all
    of them put together. Raises :class:`Abandoned` once the job stopped being ours (a chunk
    refused, or the engine's checkpoint): we stop at once.

    Engines without ``stream`` publish their whole output as one chunk.
    """
    pieces: Iterator[Audio] = (
        engine.stream(request)
        if isinstance(engine, StreamingEngine)
        else iter([engine.synthesize(request)])
    )
    parts: list[FloatAudio] = []
    rate = 0
    streamed = 0.0
    began = time.perf_counter()
    try:
        for seq, piece in enumerate(pieces):
            rate = piece.sample_rate
            streamed += piece.duration_seconds
            check_made(streamed)  # before it is published
            pcm = pcm16(piece.samples, rate)
            made = time.perf_counter()
            if not retry_store(partial(chunks.add, claim, seq, rate, pcm), "chunk", watch):
                raise watch.lost()
            news.notify(claim.job.id)
            if seq == 0:
                _first_chunk(began, made, len(pcm) // 2 / rate)
            parts.append(decode_pcm16(pcm))  # the stored file holds exactly what was streamed
    except Abandoned as stop:
        stop.chunks = len(parts)
        raise
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:  # a generator holding the model: let it go now
            close()
    if not parts:
        raise EngineError("the engine produced no audio")
    return Audio(samples=np.concatenate(parts), sample_rate=rate, sentences=len(parts))


def _first_chunk(began: float, made: float, seconds: float) -> None:
    """When the first audio was ready and published (streaming latency, bench/streaming.py)."""
    now = time.perf_counter()
    event(
        log,
        "job.first_chunk",
        engine_ms=round((made - began) * 1000, 2),
        write_ms=round((now - made) * 1000, 2),
        audio_seconds=round(seconds, 3),
    )


def _abandoned(stop: Abandoned, started: float) -> str:
    """Stopped mid-synthesis: nothing was written, the job's record is someone else's now."""
    fields = {} if stop.chunks is None else {"chunks": stop.chunks}
    seconds = round(time.perf_counter() - started, 4)
    event(log, "job.abandoned", reason=stop.reason, status=stop.status, seconds=seconds, **fields)
    return stop.status
