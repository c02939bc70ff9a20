"""``steadyvoice synth``: one job run in this process, as the service would run it.

The request passes the API's field limits (:class:`~steadyvoice.api.schemas.JobCreate`) and a
job's checks (:class:`~steadyvoice.jobs.submit.RequestChecks`: text, normalization, voice or voice
profile, engine limits); the engine gets the request a worker would build from the job's record
(:func:`~steadyvoice.jobs.runner.request_for`) and the audio the same encoding
(:func:`~steadyvoice.jobs.runner.encoded`). So the same text, voice, seed and format give the
same bytes as a job on a service with the same settings. Nothing is recorded, and the database is
opened (never created) only for a voice profile.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from steadyvoice.errors import (
    EngineError,
    InvalidRequest,
    NoDatabase,
    SteadyVoiceError,
    UnsupportedFormat,
)
from steadyvoice.settings import AudioFormat, Settings, load_settings

if TYPE_CHECKING:  # the engine and the store are imported only when the command runs
    from steadyvoice.engines.base import Audio, Engine
    from steadyvoice.jobs.runner import Profiles
    from steadyvoice.jobs.store import NewJob
    from steadyvoice.jobs.submit import JobRequest

FORMATS: tuple[str, ...] = get_args(AudioFormat)
BY_EXTENSION = {fmt: fmt for fmt in FORMATS} | {"ogg": "opus"}
REQUESTER = "cli"


def add_parser(sub: Any) -> None:
    """Register ``synth`` on the top-level subparsers."""
    synth = sub.add_parser(
        "synth",
        help="synthesize one text to a file, exactly as a job would, without the service",
        description="Synthesize TEXT exactly as a job with the same fields would be: the same "
        "checks, normalization, engine request and encoder, so the same text, voice, seed and "
        "format give the same bytes as the service. Nothing is recorded.",
    )
    synth.add_argument("text")
    synth.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        help="output file; its extension names the format (.wav, .mp3, .opus or .ogg, .aac, "
        ".flac, .pcm)",
    )
    synth.add_argument(
        "--format", choices=FORMATS, help="the format, for an output name without extension"
    )
    synth.add_argument("--seed", type=int, help="noise seed, 0 to 2^32-1 (default 42)")
    synth.add_argument("--voice", help="a voice name or a voice profile id (vp_...)")
    synth.add_argument("--speed", type=float, help="0.25 to 4.0 (default 1.0)")
    synth.add_argument(
        "--normalize",
        action=argparse.BooleanOptionalAction,
        help="spell out numbers, dates... first (default: the service's speech.normalize)",
    )
    synth.add_argument("--instructions", help="how to speak (cosyvoice only)")
    synth.add_argument(
        "--cross-lingual", action="store_true", help="keep a profile's timbre (cosyvoice only)"
    )
    synth.set_defaults(func=_synth)


@dataclass(frozen=True)
class Synthesis:
    """What ``synth`` made: the job it stands for, its audio, the encoded file and its rate."""

    job: NewJob
    audio: Audio
    data: bytes
    sample_rate: int


def synthesize(
    settings: Settings, engine: Engine, req: JobRequest, profiles: Profiles | None = None
) -> Synthesis:
    """Check, normalize, synthesize and encode ``req`` as a job with that request would be."""
    from steadyvoice.engines.budget import capped, check_made
    from steadyvoice.jobs.models import Job
    from steadyvoice.jobs.runner import encoded, request_for
    from steadyvoice.jobs.store import Claim
    from steadyvoice.jobs.submit import RequestChecks
    from steadyvoice.security.principal import DEFAULT_TENANT, Principal, Role

    caller = Principal(REQUESTER, DEFAULT_TENANT, Role.ADMIN, 0, 0)  # every tenant's profiles
    new = RequestChecks(settings, engine, profiles).validate(req, caller)
    job = Job(text=new.text, spoken_text=new.spoken_text, voice=new.voice, params=new.params)
    request = request_for(Claim(job=job, worker_id=REQUESTER, attempt=1), profiles)
    engine.load()
    try:
        with capped(settings.jobs.max_audio_seconds):  # stops where a worker would
            audio = engine.synthesize(request)
            check_made(audio.duration_seconds)
    except SteadyVoiceError:
        raise
    except Exception as exc:  # what a worker records as engine_error
        raise EngineError(f"{type(exc).__name__}: {exc}") from exc
    data, rate = encoded(audio, new.params)
    return Synthesis(new, audio, data, rate)


def output_format(output: Path, asked: str | None) -> str:
    """The format the output's extension names (or ``--format``, for a name without one)."""
    ext = output.suffix.lower().removeprefix(".")
    if not ext:
        if asked is None:
            raise UnsupportedFormat(
                f"{output.name!r} has no extension to tell the format; add one or --format",
                supported=list(FORMATS),
            )
        return asked
    named = BY_EXTENSION.get(ext)
    if named is None:
        raise UnsupportedFormat(
            f"cannot write .{ext}: name an output file ending in "
            + ", ".join(f".{e}" for e in BY_EXTENSION),
            supported=list(FORMATS),
        )
    if asked is not None and asked != named:
        raise InvalidRequest(f"--format {asked} but {output.name!r} ends in .{ext}", field="format")
    return named


def job_request(args: argparse.Namespace, fmt: str) -> JobRequest:
    """The command's arguments as a job request, within the API's own field limits."""
    from pydantic import ValidationError

    from steadyvoice.api.schemas import JobCreate

    given = {
        "text": args.text,
        "voice": args.voice,
        "seed": args.seed,
        "speed": args.speed,
        "format": fmt,
        "normalize": args.normalize,
        "instructions": args.instructions,
        "cross_lingual": args.cross_lingual,
    }
    try:
        body = JobCreate.model_validate({k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e['input']!r})"
            for e in exc.errors()
        ]
        raise InvalidRequest("; ".join(problems)) from None
    return body.job_request()


@contextmanager
def _profiles(settings: Settings, voice: str | None) -> Iterator[Profiles | None]:
    """The stored voice profiles, for a profile id; no database otherwise (and none made)."""
    from steadyvoice.voices.profiles import is_profile_id

    if voice is None or not is_profile_id(voice):
        print("steadyvoice: using no database (only a voice profile needs one)", file=sys.stderr)
        yield None
        return
    from steadyvoice.command_store import open_store
    from steadyvoice.voices.profiles import VoiceService
    from steadyvoice.voices.store import VoiceStore

    try:
        store = open_store(settings, create=False)
    except NoDatabase as exc:
        message = f"{voice} is a voice profile, but {exc.message}"
        raise type(exc)(message, **exc.details) from None
    try:
        yield VoiceService(settings, VoiceStore(store))
    finally:
        store.engine.dispose()


def _synth(args: argparse.Namespace) -> int:
    from steadyvoice.engines.registry import build_engine
    from steadyvoice.storage.local import LocalStorage

    req = job_request(args, output_format(args.output, args.format))
    settings = load_settings()
    engine = build_engine(settings)
    with _profiles(settings, req.voice) as profiles:
        made = synthesize(settings, engine, req, profiles)
    out = args.output.resolve()
    sha, size = LocalStorage(out.parent).write_atomic(out.name, made.data)
    new = made.job
    report = {
        "output": str(out),
        "format": new.params["format"],
        "sha256": sha,
        "bytes": size,
        "seed": new.params["seed"],
        "voice": new.voice,
        "engine_version": new.engine_version,
        "params": new.params,
        "spoken_text": new.spoken_text,
        "sample_rate": made.sample_rate,
        "duration_seconds": round(made.audio.duration_seconds, 3),
    }
    print(json.dumps(report))
    return 0
