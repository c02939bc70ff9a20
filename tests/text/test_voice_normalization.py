"""A job is normalized by the language of the voice that speaks it, and records which normalizer
ran: a Piper voice whose config says German gets German number words, not English ones.

The voices are joe's model under a copied config with another language (the audio does not
matter here); the checks are the ones every job passes (``RequestChecks``, also used by
``steadyvoice synth``). tests/e2e/test_language_normalize_e2e.py runs the same through ``serve``.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from voice_files import piper_voice  # type: ignore[import-not-found]

from steadyvoice.engines.fake import FakeEngine
from steadyvoice.engines.piper import PiperEngine
from steadyvoice.jobs.store import NewJob
from steadyvoice.jobs.submit import JobRequest, RequestChecks
from steadyvoice.security.principal import Principal, Role
from steadyvoice.settings import Settings

CALLER = Principal("k1", "default", Role.OPERATOR, 600, 50)
GERMAN = f"de-1+num2words{version('num2words')}"


@pytest.fixture
def checks(
    tmp_path: Path, settings_factory: Callable[..., Settings]
) -> Callable[..., Callable[..., NewJob]]:
    voices = {
        "hans": piper_voice(tmp_path / "voices", "hans", {"code": "de_DE", "family": "de"}, "de"),
        "eleni": piper_voice(tmp_path / "voices", "eleni", {"code": "el_GR", "family": "el"}, "el"),
    }

    def make(**overrides: Any) -> Callable[..., NewJob]:
        settings = settings_factory(engine="piper", piper={"voices": voices}, **overrides)
        request_checks = RequestChecks(settings, PiperEngine(settings.piper), None)

        def validate(text: str, **fields: Any) -> NewJob:
            return request_checks.validate(JobRequest(text, **fields), CALLER)

        return validate

    return make


def test_a_german_voice_gets_german_number_words_and_the_job_records_it(
    checks: Callable[..., Callable[..., NewJob]],
) -> None:
    validate = checks()
    job = validate("Ich habe 42 \u00c4pfel und 3,5 Liter.", voice="hans")
    assert job.spoken_text == "Ich habe zweiundvierzig \u00c4pfel und drei Komma f\u00fcnf Liter."
    assert job.params["text_normalization"] == GERMAN
    # The same number to the English voice: English words, and en-1.
    english = validate("I have 42 apples.", voice="joe")
    assert english.spoken_text == "I have forty-two apples."
    assert english.params["text_normalization"] == "en-1"
    # A normalizer is part of the request: the two records differ even for one text.
    assert validate("42", voice="hans").params["text_normalization"] == GERMAN
    assert validate("42", voice="hans").spoken_text == "zweiundvierzig"
    assert validate("42", voice="joe").spoken_text == "forty-two"


def test_a_language_without_a_normalizer_records_none(
    checks: Callable[..., Callable[..., NewJob]],
) -> None:
    text = "\u0388\u03c7\u03c9 5 \u03bc\u03ae\u03bb\u03b1."
    job = checks()(text, voice="eleni")
    assert job.spoken_text is None  # spoken as written
    assert job.params["text_normalization"] == "none"


def test_forcing_english_or_turning_normalization_off(
    checks: Callable[..., Callable[..., NewJob]],
) -> None:
    forced = checks(speech={"normalize": "en"})
    assert forced("Ich habe 42 \u00c4pfel.", voice="hans").params["text_normalization"] == "en-1"
    assert forced("42", voice="hans", normalize=True).spoken_text == "forty-two"
    off = checks(speech={"normalize": "none"})
    job = off("Ich habe 42 \u00c4pfel.", voice="hans")
    assert "text_normalization" not in job.params and job.spoken_text is None
    # A request that asks for normalization gets the voice's language, whatever the default.
    asked = off("Ich habe 42 \u00c4pfel.", voice="hans", normalize=True)
    assert asked.params["text_normalization"] == GERMAN
    refused = checks()("Ich habe 42 \u00c4pfel.", voice="hans", normalize=False)
    assert "text_normalization" not in refused.params and refused.spoken_text is None


def test_the_fake_engine_takes_any_language_and_normalizes_by_script(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory()
    request_checks = RequestChecks(settings, FakeEngine(settings.fake), None)
    chinese = request_checks.validate(
        JobRequest("\u8d26\u5355\u91d1\u989d\u4e3a42\u5143\u3002"), CALLER
    )
    assert chinese.spoken_text == "\u8d26\u5355\u91d1\u989d\u4e3a\u56db\u5341\u4e8c\u5143\u3002"
    assert chinese.params["text_normalization"] == f"zh-1+wetext{version('wetext')}"
    english = request_checks.validate(JobRequest("I have 42 apples."), CALLER)
    assert english.params["text_normalization"] == "en-1"
