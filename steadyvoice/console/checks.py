"""A reference recording's validation, check by check, in words a person understands.

The service checks a recording in a fixed order and stops at the first problem
(:func:`steadyvoice.voices.reference.validate_reference`). An accepted recording has every
measurement; a refused one has the failing check's measured value and limit. So each check
here is passed (with its figure where the profile has it), failed ("too quiet: -52 dBFS,
needs at least -40", with real minus signs), or not reached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from steadyvoice.errors import SteadyVoiceError
from steadyvoice.settings import VoiceSettings
from steadyvoice.voices import levels
from steadyvoice.voices.models import Voice

State = Literal["pass", "fail", "skip"]
NOT_REACHED = "not checked (an earlier check failed)"


@dataclass(frozen=True)
class Check:
    key: str
    name: str
    state: State
    words: str


@dataclass(frozen=True)
class _Spec:
    key: str
    name: str
    passed: Callable[[Voice, VoiceSettings], str]
    failed: Callable[[dict[str, Any], VoiceSettings], str]


def num(value: float, digits: int = 0) -> str:
    """A figure as people write it: a real minus sign, no needless decimals."""
    text = f"{value:.{digits}f}"
    return text.replace("-", "\u2212")


def _m(voice: Voice, key: str) -> float | None:
    value = voice.measurements.get(key)
    return float(value) if isinstance(value, int | float) else None


def _mono_passed(voice: Voice, limits: VoiceSettings) -> str:
    side = _m(voice, "side_db")
    if voice.channels == 1 or side is None:
        return "mono"
    return (
        f"stereo with the same voice in both channels: side {num(side, 1)} dB, "
        f"at most {num(limits.stereo_max_side_db)}"
    )


def _mono_failed(d: dict[str, Any], limits: VoiceSettings) -> str:
    if d.get("unit") == "channels":
        return f"{num(d['measured'])} channels, needs one voice in mono"
    return (
        f"the two channels differ: side {num(d['measured'], 1)} dB, "
        f"at most {num(limits.stereo_max_side_db)}"
    )


def _speech_passed(voice: Voice, _: VoiceSettings) -> str:
    voiced = _m(voice, "voiced_seconds")
    return "speech found" + (f": {num(voiced, 1)} s voiced" if voiced is not None else "")


def _speech_failed(d: dict[str, Any], _: VoiceSettings) -> str:
    if d.get("unit") == "dB":
        return (
            f"no speech found: a steady sound ({num(d['measured'], 1)} dB of variation, "
            f"needs at least {num(levels.MIN_MODULATION_DB)})"
        )
    return (
        f"no speech found: {num(d['measured'], 2)} s of voiced sound, "
        f"needs at least {num(levels.MIN_VOICED_SECONDS, 1)}"
    )


def _length_failed(d: dict[str, Any], limits: VoiceSettings) -> str:
    seconds = float(d["measured"])
    if seconds < limits.min_speech_seconds:
        return (
            f"too short: {num(seconds, 1)} s of speech, "
            f"needs at least {num(limits.min_speech_seconds)}"
        )
    return f"too long: {num(seconds, 1)} s of speech, at most {num(limits.max_speech_seconds)}"


def _figure(voice: Voice, key: str, render: Callable[[float], str], missing: str = "passed") -> str:
    value = _m(voice, key)
    return render(value) if value is not None else missing


SPECS = (
    _Spec(
        "readable",
        "Readable audio",
        lambda v, _: f"a {v.reference_format} file",
        lambda d, _: str(d.get("message", "the file could not be read as audio")),
    ),
    _Spec(
        "sample_rate",
        "Sample rate",
        lambda v, lim: f"{v.sample_rate} Hz, needs at least {lim.min_sample_rate}",
        lambda d, lim: (
            f"too low: {num(d['measured'])} Hz, needs at least {num(lim.min_sample_rate)}"
        ),
    ),
    _Spec("mono", "One voice (mono)", _mono_passed, _mono_failed),
    _Spec(
        "file_length",
        "File length",
        lambda v, lim: f"{num(v.file_seconds, 1)} s, at most {num(lim.max_file_seconds)}",
        lambda d, lim: f"too long: {num(d['measured'], 1)} s, at most {num(lim.max_file_seconds)}",
    ),
    _Spec("speech", "Speech present", _speech_passed, _speech_failed),
    _Spec(
        "speech_length",
        "Length of speech",
        lambda v, lim: (
            f"{num(v.speech_seconds, 1)} s of speech, needs "
            f"{num(lim.min_speech_seconds)} to {num(lim.max_speech_seconds)}"
        ),
        _length_failed,
    ),
    _Spec(
        "level",
        "Loud enough",
        lambda v, lim: _figure(
            v,
            "speech_dbfs",
            lambda x: f"{num(x)} dBFS, needs at least {num(lim.min_speech_dbfs)}",
        ),
        lambda d, lim: (
            f"too quiet: {num(d['measured'])} dBFS, needs at least {num(lim.min_speech_dbfs)}"
        ),
    ),
    _Spec(
        "clipping",
        "Not clipped",
        lambda v, lim: _figure(
            v,
            "clipped_fraction",
            lambda x: f"{x:.2%} clipped, at most {lim.max_clipped_fraction:.2%}",
        ),
        lambda d, lim: (
            f"clipped: {float(d['measured']):.2%} of the speech, "
            f"at most {lim.max_clipped_fraction:.2%}"
        ),
    ),
    _Spec(
        "noise",
        "Quiet background",
        lambda v, lim: _figure(
            v,
            "snr_db",
            lambda x: f"speech {num(x)} dB above the noise, needs at least {num(lim.min_snr_db)}",
        ),
        lambda d, lim: (
            f"too noisy: speech only {num(d['measured'])} dB above the noise, "
            f"needs at least {num(lim.min_snr_db)}"
        ),
    ),
)

_FAILED_AT = {
    "reference_unreadable": "readable",
    "reference_format_unsupported": "readable",
    "reference_sample_rate_too_low": "sample_rate",
    "reference_not_mono": "mono",
    "reference_no_speech": "speech",
    "reference_too_short": "speech_length",
    "reference_too_quiet": "level",
    "reference_clipped": "clipping",
    "reference_too_noisy": "noise",
}


def failed_check(exc: SteadyVoiceError, limits: VoiceSettings) -> str | None:
    """Which check refused the recording (``None``: the refusal was not about the audio)."""
    if exc.code == "reference_too_long":
        # Two checks share the code: the file's length, and the speech's.
        file_limit = exc.details.get("limit") == limits.max_file_seconds
        return "file_length" if file_limit and "file" in exc.message else "speech_length"
    return _FAILED_AT.get(exc.code)


def accepted(voice: Voice, limits: VoiceSettings) -> list[Check]:
    """Every check of an accepted recording, with its figure against its limit."""
    return [Check(s.key, s.name, "pass", s.passed(voice, limits)) for s in SPECS]


def refused(exc: SteadyVoiceError, limits: VoiceSettings) -> list[Check]:
    """The checks up to the one that refused the recording, and those never reached."""
    failed = failed_check(exc, limits)
    if failed is None:
        return []
    details = {**exc.details, "message": exc.message}
    checks: list[Check] = []
    state: State = "pass"
    for spec in SPECS:
        if spec.key == failed:
            measured = "measured" in details or spec.key == "readable"
            words = spec.failed(details, limits) if measured else exc.message
            checks.append(Check(spec.key, spec.name, "fail", words))
            state = "skip"
        elif state == "pass":
            checks.append(Check(spec.key, spec.name, "pass", "passed"))
        else:
            checks.append(Check(spec.key, spec.name, "skip", NOT_REACHED))
    return checks
