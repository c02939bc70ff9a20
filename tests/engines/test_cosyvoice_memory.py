"""CUDA out-of-memory in the cosyvoice engine: free memory, retry smaller, then fail cleanly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from cosyvoice_standin import (  # type: ignore[import-not-found]
    engine_for,
    make_model_dir,
    reference_target,
    set_faults,
    standin,
)

from steadyvoice.engines.base import SynthesisRequest, VoiceTarget
from steadyvoice.engines.cosyvoice import CosyVoiceEngine
from steadyvoice.errors import EngineOutOfMemory

# One sentence of 95 characters: upstream's frontend cannot split it.
LONG_SENTENCE = (
    "the quick brown fox jumps over the lazy dog while seven silver swans swim slowly out to sea"
)
SHORT = "Hello there."


@pytest.fixture
def engine(tmp_path: Path) -> CosyVoiceEngine:
    engine = engine_for(make_model_dir(tmp_path / "model"), oom_retry_segment_chars=30)
    engine.load()
    standin().reset()
    return engine


@pytest.fixture
def target(tmp_path: Path) -> VoiceTarget:
    return reference_target(tmp_path / "voices")


@pytest.fixture
def released(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append(1))
    return calls


def _faults(engine: CosyVoiceEngine, **faults: Any) -> None:
    set_faults(Path(engine._loaded.model.model_dir), faults)  # type: ignore[union-attr]


def _request(target: VoiceTarget, text: str) -> SynthesisRequest:
    return SynthesisRequest(text, voice="clone", target=target)


@pytest.mark.parametrize("where", ["flow", "llm"])
def test_out_of_memory_frees_memory_and_retries_in_smaller_pieces(
    engine: CosyVoiceEngine, target: VoiceTarget, released: list[int], where: str
) -> None:
    _faults(engine, oom_over_chars=40, oom_in=where)
    audio = engine.synthesize(_request(target, LONG_SENTENCE))
    calls = standin().calls()
    assert calls[0]["tts_text"] == LONG_SENTENCE, "the first try was the whole text"
    retry = calls[1:]
    assert len(retry) == 4 and all(len(c["tts_text"]) <= 30 for c in retry)
    assert " ".join(c["tts_text"] for c in retry) == LONG_SENTENCE
    assert audio.duration_seconds > 5
    assert len(released) >= 2, "cache released after the failure and after the job"


@pytest.mark.parametrize("where", ["flow", "llm"])
def test_out_of_memory_twice_fails_the_job_and_the_engine_carries_on(
    engine: CosyVoiceEngine, target: VoiceTarget, released: list[int], where: str
) -> None:
    _faults(engine, oom_marker="swans", oom_in=where)
    with pytest.raises(EngineOutOfMemory) as caught:
        engine.synthesize(_request(target, LONG_SENTENCE))
    assert caught.value.code == "engine_out_of_memory"
    assert caught.value.details["retry_chars"] == 30
    inner = engine._loaded.model.model  # type: ignore[union-attr]
    assert inner.llm_end_dict == {} and inner.tts_speech_token_dict == {}
    released.clear()
    assert engine.synthesize(_request(target, SHORT)).duration_seconds > 0
    assert released == [1]


def test_out_of_memory_while_streaming_fails_the_stream_cleanly(
    engine: CosyVoiceEngine, target: VoiceTarget
) -> None:
    _faults(engine, oom_marker="swans")
    with pytest.raises(EngineOutOfMemory):
        list(engine.stream(_request(target, LONG_SENTENCE)))
    assert len(list(engine.stream(_request(target, SHORT)))) >= 1


def test_other_errors_are_not_retried(engine: CosyVoiceEngine, tmp_path: Path) -> None:
    gone = reference_target(tmp_path / "v")
    Path(str(gone.reference_path)).unlink()
    with pytest.raises(Exception, match="unreadable"):
        engine.synthesize(_request(gone, SHORT))
    assert standin().calls() == []
