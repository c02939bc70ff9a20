"""What the contract suite's modules share: whether it runs, and the names it uses."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REPO_ENV = "STEADYVOICE_TEST_COSYVOICE_REPO"
SPEAKER = "speaker_a"
TRANSCRIPT = "The weather was bright and the train was on time."
# What upstream imports beyond the project's own dependencies (scripts/cosyvoice-env.sh).
HEAVY = ("torch", "torchaudio", "transformers", "hyperpyyaml", "whisper", "diffusers")


def upstream_repo() -> Path | None:
    """The checkout named by the environment at start-up, or None.

    Read once: tests/conftest.py clears STEADYVOICE_* variables around every test.
    """
    return _AT_START


_RAW = os.environ.get(REPO_ENV)
_AT_START = Path(_RAW).resolve() if _RAW else None


def skip_reason() -> str | None:
    """Why the suite cannot run here, or None; imports nothing heavy."""
    repo = upstream_repo()
    if repo is None:
        return f"{REPO_ENV} is not set (make test-cosyvoice REPO=/path/to/CosyVoice)"
    if not (repo / "cosyvoice").is_dir() or not (repo / "third_party/Matcha-TTS/matcha").is_dir():
        return f"{REPO_ENV}={repo} is not a CosyVoice checkout with third_party/Matcha-TTS"
    missing = [m for m in HEAVY if importlib.util.find_spec(m) is None]
    if missing:
        return f"{missing} not installed: run the suite in .venv-cosyvoice (make test-cosyvoice)"
    return None


# Upstream and the libraries under it warn (deprecations, torch.cuda.amp, sdpa); the project's
# "warnings are errors" is for the project's own code. A test's first use builds and loads a model
# (about a minute on two busy cores), past the project's default per-test timeout.
MARKS = [
    pytest.mark.timeout(900),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]
