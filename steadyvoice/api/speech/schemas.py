"""Request and response bodies of the OpenAI-compatible routes (``/v1/audio/*``, ``/v1/models``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from steadyvoice.settings import AudioFormat


class VoiceRef(BaseModel):
    """OpenAI's custom-voice form, ``{"id": "..."}``: here, a voice profile id or any voice name."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=256)


class SpeechCreate(BaseModel):
    """OpenAI's ``POST /v1/audio/speech`` body, plus ``seed``, ``stream`` and ``normalize``.

    Unknown fields are ignored, as OpenAI's SDKs may add new ones, and named in the answer's
    ``X-SteadyVoice-Ignored-Fields`` header (``POST /v1/jobs`` refuses them).
    """

    model_config = ConfigDict(extra="allow")

    model: str = Field(
        min_length=1,
        max_length=128,
        description="One of ``GET /v1/models`` (``tts-1``, ``tts-1-hd``, ``gpt-4o-mini-tts`` "
        "or the engine's name); all of them are the same configured engine.",
    )
    input: str = Field(max_length=1_000_000, description="What to say.")
    voice: str | VoiceRef = Field(
        description="An OpenAI voice name (``alloy``...; mapped by ``speech.voice_map``, else the "
        "engine's default voice), an engine voice name, or a voice profile id (``vp_...``), "
        'also as ``{"id": ...}``. ``GET /v1/audio/voices`` lists them all.'
    )
    response_format: AudioFormat | None = Field(
        None,
        description="Default: the ``speech.default_format`` setting (mp3). ``pcm`` is raw "
        "16-bit little-endian mono at 24 kHz, as OpenAI's (``X-Sample-Rate``).",
    )
    speed: float = Field(1.0, ge=0.25, le=4.0)
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Defaults to 42.")
    stream: bool | None = Field(
        None,
        description="Send audio sentence by sentence as it is made (default, as OpenAI does); "
        "``false``: the stored file, whole, with ``X-Content-SHA256``. Left out, ``flac`` is "
        "answered whole: a FLAC file can only be sent once it is complete.",
    )
    stream_format: Literal["audio", "sse"] | None = Field(
        None, description="Only ``audio`` (raw audio bytes); ``sse`` is refused."
    )
    normalize: bool | None = Field(
        None,
        description="Spell out numbers, dates, currency and times in the voice's language first. "
        "Default: the service's setting.",
    )
    instructions: str | None = Field(
        None,
        max_length=4096,
        description="How to speak, for engines that can (cosyvoice keys such as 'happy'); "
        "other engines refuse it.",
    )


def ignored_fields(body: SpeechCreate) -> list[str]:
    """The names of the fields of ``body`` that are none of ours, as the client sent them."""
    return list(body.model_extra or {})


class ModelOut(BaseModel):
    """One entry of ``GET /v1/models``, in OpenAI's shape."""

    id: str
    object: Literal["model"] = "model"
    created: int = Field(description="Always 0: models here have no creation time.")
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


class SpeechVoiceOut(BaseModel):
    """A name ``POST /v1/audio/speech`` takes as ``voice``, and what speaks it."""

    id: str = Field(description="Pass this as ``voice``.")
    kind: Literal["engine", "openai", "profile"]
    speaks_as: str = Field(
        description="The engine voice that speaks (for a profile: the base voice adapted to it)."
    )
    name: str | None = Field(None, description="A voice profile's name.")
    languages: list[str] = Field(
        description="What it speaks: primary language codes (``en``, ``zh``...), ``*`` for any. "
        "Other text is refused with ``text_language_unsupported``."
    )
    language: str | None = Field(
        None, description="A voice profile's recording language (``GET /v1/voices``)."
    )


class SpeechVoiceList(BaseModel):
    object: Literal["list"] = "list"
    engine: str
    default_voice: str
    voices: list[SpeechVoiceOut]
