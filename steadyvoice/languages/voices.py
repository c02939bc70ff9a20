"""The languages a voice name or voice profile id speaks in, on the configured engine."""

from __future__ import annotations

from steadyvoice.engines.base import ANY_LANGUAGE, Engine
from steadyvoice.errors import UnknownVoice
from steadyvoice.voices.store import VOICE_ID_PREFIX


def speaking_voice(engine: Engine, voice: str) -> str:
    """The engine voice that speaks ``voice``: a profile id is spoken by the default voice."""
    return engine.default_voice() if voice.startswith(VOICE_ID_PREFIX) else voice


def voice_languages(engine: Engine, voice: str) -> tuple[str, ...]:
    """What ``voice`` (an engine voice or a profile id) speaks; ``("*",)`` is any language.

    ``unknown_voice`` for a name the engine does not have."""
    return engine.voice_languages(speaking_voice(engine, voice))


def speakers_of(engine: Engine, language: str) -> list[str]:
    """The engine's voices that speak ``language`` (those that speak any language included)."""
    return [v for v in engine.voices() if {language, ANY_LANGUAGE} & set(engine.voice_languages(v))]


def listed_languages(engine: Engine, voice: str) -> list[str]:
    """``voice_languages`` for a voice list: empty, not an error, for a name the engine lacks."""
    try:
        return list(voice_languages(engine, voice))
    except UnknownVoice:
        return []
