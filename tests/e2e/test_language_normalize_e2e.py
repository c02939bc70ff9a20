"""Normalization by the voice's language through a real ``serve`` with real Piper: an operator
adds a German Piper voice by path (``piper.voices``), and its jobs get German number words,
record the normalizer that made them, and are spoken."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import pytest
from processes import ServiceFactory  # type: ignore[import-not-found]
from voice_files import piper_voice  # type: ignore[import-not-found]

pytestmark = pytest.mark.timeout(300)


def test_a_german_piper_voice_added_by_path_speaks_german_numbers(
    tmp_path: Path,
    start_service: ServiceFactory,
    service_env: Callable[..., dict[str, str]],
) -> None:
    # joe's model under a config that says German; the audio does not matter here
    hans = piper_voice(tmp_path / "voices", "hans", {"code": "de_DE", "family": "de"}, "de")
    svc = start_service(service_env(engine="piper", piper__voices=json.dumps({"hans": str(hans)})))
    german = svc.submit("Ich habe 42 \u00c4pfel und 3,5 Liter.", voice="hans")
    english = svc.submit("I have 42 apples.", voice="joe")
    german = svc.wait_job(german["id"])
    english = svc.wait_job(english["id"])
    assert german["status"] == "succeeded", german
    assert english["status"] == "succeeded", english
    assert german["spoken_text"] == (
        "Ich habe zweiundvierzig \u00c4pfel und drei Komma f\u00fcnf Liter."
    )
    assert german["params"]["text_normalization"] == f"de-1+num2words{version('num2words')}"
    assert english["spoken_text"] == "I have forty-two apples."
    assert english["params"]["text_normalization"] == "en-1"
