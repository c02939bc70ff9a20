"""The CosyVoice contract suite: the adapter on upstream's real code, with a tiny random model.

Opt-in: it runs when ``STEADYVOICE_TEST_COSYVOICE_REPO`` names an upstream CosyVoice checkout
(with ``third_party/Matcha-TTS``) and the interpreter has upstream's dependencies
(``make test-cosyvoice REPO=...`` makes that environment, docs/engines/cosyvoice.md). Otherwise
every module here is skipped at collection, before anything imports torch.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from cosyvoice_contract import SPEAKER, upstream_repo  # noqa: E402


@pytest.fixture(scope="session")
def repo() -> Path:
    path = upstream_repo()
    assert path is not None
    return path


@pytest.fixture(scope="session")
def model_dirs(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], Path]:
    """Tiny model directories, built once per generation for the session."""
    import tiny_model

    built: dict[int, Path] = {}

    def get(generation: int) -> Path:
        if generation not in built:
            root = tmp_path_factory.mktemp(f"cosyvoice{generation}")
            built[generation] = tiny_model.build(repo, root / "model", generation)
        return built[generation]

    return get


@pytest.fixture(scope="session")
def engines(repo: Path, model_dirs: Callable[[int], Path]) -> Iterator[Callable[[int], Any]]:
    """Loaded (and warmed-up) engines, one per generation for the session."""
    import soundfile_load

    from steadyvoice.engines.cosyvoice import CosyVoiceEngine
    from steadyvoice.settings import CosyVoiceSettings

    soundfile_load.install()
    loaded: dict[int, CosyVoiceEngine] = {}

    def get(generation: int) -> CosyVoiceEngine:
        if generation not in loaded:
            settings = CosyVoiceSettings(
                model_dir=model_dirs(generation), repo_dir=repo, speakers=[SPEAKER]
            )
            engine = CosyVoiceEngine(settings)
            engine.load()
            loaded[generation] = engine
        return loaded[generation]

    yield get
