"""Model directories and engines for the stand-in upstream in ``cosyvoice_upstream/``.

Imported as ``from cosyvoice_standin import ...`` (tests/engines is on ``sys.path``).
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import soundfile as sf

from steadyvoice.engines.base import VoiceTarget
from steadyvoice.engines.cosyvoice import CosyVoiceEngine
from steadyvoice.settings import CosyVoiceSettings

REPO = Path(__file__).resolve().parent / "cosyvoice_upstream"
TRANSCRIPT = "The weather was bright and the train was on time."


def make_model_dir(
    root: Path,
    generation: int = 3,
    speakers: tuple[str, ...] = (),
    faults: dict[str, Any] | None = None,
) -> Path:
    """A model dir shaped like upstream's (config, weights, tokenizer dir), with fake bytes."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"cosyvoice{generation}.yaml").write_text("# stand-in config\n", "utf-8")
    for name in ("llm.pt", "flow.pt", "hift.pt", "campplus.onnx", "speech_tokenizer_v3.onnx"):
        (root / name).write_bytes(name.encode() * 64)
    (root / "CosyVoice-BlankEN").mkdir(exist_ok=True)
    (root / "CosyVoice-BlankEN" / "config.json").write_text("{}", "utf-8")
    if speakers:
        (root / "spk2info.txt").write_text("\n".join(speakers) + "\n", "utf-8")
    set_faults(root, faults or {})
    return root


def set_faults(model_dir: Path, faults: dict[str, Any]) -> None:
    (model_dir / "standin.json").write_text(json.dumps(faults), "utf-8")


def engine_for(model_dir: Path, cache_dir: Path | None = None, **settings: Any) -> CosyVoiceEngine:
    values: dict[str, Any] = {"model_dir": model_dir, "repo_dir": REPO}
    values.update(settings)
    return CosyVoiceEngine(CosyVoiceSettings(**values), cache_dir=cache_dir)


def standin() -> ModuleType:
    """The stand-in's bookkeeping module (the engine puts the same path first when it loads)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module("cosyvoice.standin")


def reference_target(
    folder: Path,
    transcript: str | None = TRANSCRIPT,
    seconds: float = 4.0,
    rate: int = 24_000,
    channels: int = 1,
    fmt: str = "WAV",
) -> VoiceTarget:
    """A voice profile target whose reference file is a short voiced tone."""
    t = np.arange(int(seconds * rate)) / rate
    mono = (0.3 * np.sin(2 * np.pi * 140 * t)).astype(np.float32)
    data = np.stack([mono] * channels, axis=1) if channels > 1 else mono
    path = folder / f"reference-{seconds}-{rate}-{channels}.{fmt.lower()}"
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, rate, format=fmt)
    return VoiceTarget(
        voice_id="vp_test",
        analysis={},
        reference_sha256="0" * 64,
        reference_path=str(path),
        transcript=transcript,
    )
