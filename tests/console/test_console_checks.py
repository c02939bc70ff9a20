"""A reference's validation in words: each refusal names its check, figure and limit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from steadyvoice.console.checks import accepted, refused
from steadyvoice.errors import (
    ConsentMissing,
    ReferenceClipped,
    ReferenceInvalid,
    ReferenceNoSpeech,
    ReferenceNotMono,
    ReferenceSampleRateTooLow,
    ReferenceTooLong,
    ReferenceTooNoisy,
    ReferenceTooQuiet,
    ReferenceTooShort,
    ReferenceUnreadable,
)
from steadyvoice.settings import VoiceSettings
from steadyvoice.voices.models import Voice

LIMITS = VoiceSettings()
M = "\u2212"  # the minus sign people read


@pytest.mark.parametrize(
    ("error", "check", "words"),
    [
        (ReferenceUnreadable("the file is empty"), "readable", "the file is empty"),
        (
            ReferenceSampleRateTooLow("x", measured=8000, limit=16000, unit="Hz"),
            "sample_rate",
            "too low: 8000 Hz, needs at least 16000",
        ),
        (
            ReferenceNotMono("x", measured=-12.04, limit=-30.0, unit="dB"),
            "mono",
            f"the two channels differ: side {M}12.0 dB, at most {M}30",
        ),
        (ReferenceNotMono("x", measured=4, limit=2, unit="channels"), "mono", "4 channels"),
        (
            ReferenceTooLong("the file is longer", measured=130.0, limit=120.0, unit="s"),
            "file_length",
            "too long: 130.0 s, at most 120",
        ),
        (
            ReferenceNoSpeech("x", measured=0.1, limit=0.3, unit="s"),
            "speech",
            "no speech found: 0.10 s of voiced sound, needs at least 0.3",
        ),
        (
            ReferenceTooShort("x", measured=1.24, limit=3.0, unit="s"),
            "speech_length",
            "too short: 1.2 s of speech, needs at least 3",
        ),
        (
            ReferenceTooLong("the recording has", measured=45.0, limit=30.0, unit="s"),
            "speech_length",
            "too long: 45.0 s of speech, at most 30",
        ),
        (
            ReferenceTooQuiet("x", measured=-52.3, limit=-40.0, unit="dBFS"),
            "level",
            f"too quiet: {M}52 dBFS, needs at least {M}40",
        ),
        (
            ReferenceClipped("x", measured=0.023, limit=0.001, unit="fraction"),
            "clipping",
            "clipped: 2.30% of the speech, at most 0.10%",
        ),
        (
            ReferenceTooNoisy("x", measured=9.2, limit=15.0, unit="dB"),
            "noise",
            "too noisy: speech only 9 dB above the noise, needs at least 15",
        ),
    ],
)
def test_a_refusal_names_its_check_in_words(
    error: ReferenceInvalid, check: str, words: str
) -> None:
    checks = refused(error, LIMITS)
    states = [c.state for c in checks]
    failed = next(c for c in checks if c.state == "fail")
    assert failed.key == check and words in failed.words
    at = states.index("fail")
    assert set(states[:at]) <= {"pass"} and set(states[at + 1 :]) <= {"skip"}


def test_a_refusal_not_about_the_audio_has_no_checks() -> None:
    assert refused(ConsentMissing("say who agreed"), LIMITS) == []


def test_an_accepted_recording_shows_every_figure_against_its_limit() -> None:
    voice = Voice(
        reference_format="WAV",
        sample_rate=22050,
        channels=1,
        file_seconds=6.5,
        speech_seconds=6.1,
        measurements={"speech_dbfs": -23.4, "clipped_fraction": 0.0, "snr_db": 41.0},
        created_at=datetime.now(UTC),
    )
    words = {c.key: c.words for c in accepted(voice, LIMITS)}
    assert words["level"] == f"{M}23 dBFS, needs at least {M}40"
    assert words["noise"] == "speech 41 dB above the noise, needs at least 15"
    assert words["sample_rate"] == "22050 Hz, needs at least 16000"
    assert words["speech_length"] == "6.1 s of speech, needs 3 to 30"
    assert {c.state for c in accepted(voice, LIMITS)} == {"pass"}
