"""Every engine's voices declare their languages: Piper from each voice's config, CosyVoice from
its table, fake any."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from voice_files import piper_voice  # type: ignore[import-not-found]

from steadyvoice.engines.cosyvoice.languages import DIALECTS, model_languages
from steadyvoice.engines.cosyvoice.prompts import INSTRUCTIONS
from steadyvoice.engines.fake import FakeEngine
from steadyvoice.engines.piper import PiperEngine
from steadyvoice.errors import UnknownVoice
from steadyvoice.languages.codes import primary_code
from steadyvoice.languages.voices import speakers_of, voice_languages
from steadyvoice.settings import FakeSettings, PiperSettings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "engines"))
from cosyvoice_standin import engine_for, make_model_dir  # type: ignore[import-not-found]


def test_piper_reads_each_voices_config(tmp_path: Path) -> None:
    voices = {
        "anna": piper_voice(tmp_path, "anna", {"code": "de_DE", "family": "de"}, "de"),
        "xiao": piper_voice(tmp_path, "xiao", None, "cmn"),  # espeak.voice only
        "bare": piper_voice(tmp_path, "bare", None),  # neither field: any language
    }
    engine = PiperEngine(PiperSettings(voices=voices))
    assert engine.voice_languages("joe") == ("en",)
    assert engine.voice_languages("anna") == ("de",)
    assert engine.voice_languages("xiao") == ("zh",)
    assert engine.voice_languages("bare") == ("*",)
    assert speakers_of(engine, "de") == ["anna", "bare"]
    with pytest.raises(UnknownVoice):
        engine.voice_languages("nobody")


def test_a_profile_speaks_its_base_voices_languages() -> None:
    engine = PiperEngine(PiperSettings())
    assert voice_languages(engine, "vp_" + "0" * 32) == ("en",)


def test_fake_speaks_any_language() -> None:
    engine = FakeEngine(FakeSettings())
    assert engine.voice_languages("alpha") == ("*",)
    with pytest.raises(UnknownVoice):
        engine.voice_languages("joe")


@pytest.mark.parametrize(
    ("tag", "code"),
    [
        ("en_US", "en"),
        ("pt-BR", "pt"),
        ("cmn", "zh"),
        ("ZH", "zh"),
        ("yue", "yue"),
        ("nb_NO", "no"),
        ("1x", None),
    ],
)
def test_language_tags_become_primary_codes(tag: str, code: str | None) -> None:
    assert primary_code(tag) == code


def test_cosyvoice_languages_by_generation(tmp_path: Path) -> None:
    assert model_languages(2) == ("zh", "en", "ja", "ko", "yue")
    assert set(model_languages(3)) == {"zh", "en", "ja", "ko", "yue", "de", "es", "fr", "it", "ru"}
    for generation in (2, 3):
        folder = make_model_dir(tmp_path / str(generation), generation, speakers=("中文女",))
        engine = engine_for(folder, speakers=["中文女"])
        assert engine.voice_languages("中文女") == model_languages(generation)
        assert engine.voice_languages("clone") == model_languages(generation)
        with pytest.raises(UnknownVoice):
            engine.voice_languages("joe")


def test_cosyvoice_dialects_are_exactly_its_dialect_instructions() -> None:
    dialects = {key for key, sentence in INSTRUCTIONS.items() if sentence.endswith("表达。")}
    assert set(DIALECTS) == dialects
    assert DIALECTS["cantonese"].language == "yue"
    assert all(d.language in model_languages(2) for d in DIALECTS.values())
