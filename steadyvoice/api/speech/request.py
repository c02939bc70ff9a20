"""How an OpenAI-style speech request becomes a job, as OpenAI's clients expect it to behave.

* ``model`` and ``voice`` are OpenAI's names (or ours), resolved to the configured engine;
* the answer streams unless ``stream: false`` (or the format is only sent at its end);
* ``pcm`` is OpenAI's: 24 kHz 16-bit mono little-endian, resampled (the job's ``output_rate``);
* fields that are none of ours are ignored and named in ``X-SteadyVoice-Ignored-Fields``.
"""

from __future__ import annotations

from urllib.parse import quote

from steadyvoice.api.speech.schemas import SpeechCreate, VoiceRef, ignored_fields
from steadyvoice.api.speech.stream import HELD_TO_THE_END
from steadyvoice.engines.base import Engine
from steadyvoice.errors import InvalidRequest, UnknownModel
from steadyvoice.jobs.submit import JobRequest
from steadyvoice.settings import OPENAI_VOICES, Settings
from steadyvoice.voices.profiles import is_profile_id

PCM_RATE = 24_000  # OpenAI's pcm
IGNORED_HEADER = "X-SteadyVoice-Ignored-Fields"
# Names in that header at most, each cut to NAME_CHARS: a header stays small whatever is sent.
MAX_IGNORED = 20
NAME_CHARS = 64


def speech_request(body: SpeechCreate, settings: Settings, engine: Engine) -> JobRequest:
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
            "(stream_format 'audio', the default)",
            field="stream_format",
            supported=["audio"],
        )
    fmt = body.response_format or settings.speech.default_format
    return JobRequest(
        text=body.input,
        voice=resolve_voice(body.voice, settings, engine),
        seed=body.seed,
        speed=body.speed,
        format=fmt,
        instructions=body.instructions,
        stream=fmt not in HELD_TO_THE_END if body.stream is None else body.stream,
        normalize=body.normalize,
        output_rate=PCM_RATE if fmt == "pcm" else None,
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


def ignored_header(body: SpeechCreate) -> str | None:
    """``X-SteadyVoice-Ignored-Fields``: the ignored names, comma-separated, percent-encoded
    where a header could not carry them; None when nothing was ignored."""
    names = ignored_fields(body)
    if not names:
        return None
    shown = [quote(name[:NAME_CHARS], safe="") or '""' for name in names[:MAX_IGNORED]]
    if len(names) > MAX_IGNORED:
        shown.append(f"...{len(names) - MAX_IGNORED} more")
    return ",".join(shown)
