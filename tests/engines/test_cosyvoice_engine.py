"""The cosyvoice engine against the stand-in upstream: prompts, serialization, seed, streaming."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from cosyvoice_standin import (  # type: ignore[import-not-found]
    TRANSCRIPT,
    engine_for,
    make_model_dir,
    reference_target,
    set_faults,
    standin,
)

from steadyvoice.engines.base import (
    Audio,
    StreamingEngine,
    SynthesisRequest,
    VoiceTarget,
    check_request,
)
from steadyvoice.engines.cosyvoice import CosyVoiceEngine
from steadyvoice.engines.cosyvoice.prompts import END_OF_PROMPT, SYSTEM_PROMPT
from steadyvoice.errors import (
    EngineOutputInvalid,
    EngineUnavailable,
    InvalidRequest,
    ReferenceSampleRateTooLow,
    ReferenceTooLong,
)

SENTENCE = "Good morning, and welcome to the station."
LONG = " ".join(f"This is sentence number {i} of a long paragraph." for i in range(8))

EngineFactory = Callable[..., CosyVoiceEngine]


@pytest.fixture
def loaded(tmp_path: Path) -> EngineFactory:
    """Loaded engines on fresh stand-in model dirs; the stand-in's records start empty."""

    def make(generation: int = 3, model_speakers: tuple[str, ...] = (), **settings: Any) -> Any:
        model_dir = make_model_dir(tmp_path / f"model{generation}", generation, model_speakers)
        engine = engine_for(model_dir, tmp_path / "cache", **settings)
        engine.load()
        standin().reset()
        return engine

    return make


@pytest.fixture
def target(tmp_path: Path) -> VoiceTarget:
    return reference_target(tmp_path / "voices")


def _profile_request(target: VoiceTarget, text: str = SENTENCE, **fields: Any) -> SynthesisRequest:
    return SynthesisRequest(text=text, voice="clone", target=target, **fields)


def _events() -> list[tuple[str, dict[str, Any]]]:
    return list(standin().events)


@pytest.mark.parametrize("generation", [2, 3])
def test_zero_shot_reaches_upstream_formatted_for_its_generation(
    loaded: EngineFactory, target: VoiceTarget, generation: int
) -> None:
    engine = loaded(generation)
    audio = engine.synthesize(_profile_request(target, LONG, seed=5))
    [call] = standin().calls()
    assert call["method"] == "inference_zero_shot" and call["tts_text"] == LONG
    expected = f"{SYSTEM_PROMPT}{END_OF_PROMPT}{TRANSCRIPT}" if generation == 3 else TRANSCRIPT
    assert call["prompt_text"] == expected
    assert audio.sample_rate == 24_000 and audio.samples.dtype == np.float32
    assert audio.sentences == 8, "upstream split the plain text into its sentences"
    assert float(np.max(np.abs(audio.samples))) <= 1.0


def test_the_stand_in_enforces_cosyvoice3s_prompt_assertion(
    loaded: EngineFactory, target: VoiceTarget
) -> None:
    """Sanity of the stand-in: upstream's own servers pass the bare transcript and fail."""
    model = importlib_model(loaded(3))
    with pytest.raises(AssertionError, match="endofprompt"):
        list(model.inference_zero_shot(SENTENCE, TRANSCRIPT, target.reference_path))


def importlib_model(engine: CosyVoiceEngine) -> Any:
    return engine._loaded.model  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("fields", "method"),
    [
        ({"cross_lingual": True}, "inference_cross_lingual"),
        ({"instructions": "sad"}, "inference_instruct2"),
    ],
)
def test_cross_lingual_and_instruct_modes_run_on_v3(
    loaded: EngineFactory, target: VoiceTarget, fields: dict[str, Any], method: str
) -> None:
    engine = loaded(3)
    audio = engine.synthesize(_profile_request(target, LONG, **fields))
    calls = standin().calls()
    assert {c["method"] for c in calls} == {method}
    assert audio.duration_seconds > 1.0


def test_prompt_audio_goes_upstream_as_a_path_to_a_mono_wav_removed_afterwards(
    loaded: EngineFactory, tmp_path: Path
) -> None:
    stereo_flac = reference_target(tmp_path / "v", channels=2, rate=48_000, fmt="FLAC")
    loaded(3).synthesize(_profile_request(stereo_flac))
    [prompt] = [f for kind, f in _events() if kind == "prompt"]
    assert isinstance(prompt["path"], str) and prompt["path"].endswith(".wav")
    assert prompt["channels"] == 1 and prompt["rate"] == 48_000
    assert not os.path.exists(prompt["path"]), "the temporary prompt WAV is removed"


def test_references_upstream_would_assert_on_are_refused_before_queueing(
    loaded: EngineFactory, tmp_path: Path
) -> None:
    engine = loaded(3)
    with pytest.raises(ReferenceTooLong) as too_long:
        engine.check_target(reference_target(tmp_path / "a", seconds=31.0, rate=16_000))
    assert too_long.value.code == "reference_too_long"
    low = reference_target(tmp_path / "b", rate=8_000)
    with pytest.raises(ReferenceSampleRateTooLow):
        check_request(engine, _profile_request(low))


def test_calls_on_one_model_never_overlap(loaded: EngineFactory, target: VoiceTarget) -> None:
    engine = loaded(3)
    results: dict[int, Audio] = {}
    errors: list[Exception] = []

    def run(seed: int) -> None:
        try:
            results[seed] = engine.synthesize(_profile_request(target, LONG, seed=seed))
        except Exception as exc:  # noqa: BLE001 - asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and len(results) == 6
    assert standin().max_active == 1, "two upstream calls ran at once on one model"
    # Each call's seed came right before it, never another request's.
    kinds = [(kind, f.get("seed")) for kind, f in _events() if kind in ("seed", "call")]
    assert [k for k, _ in kinds] == ["seed", "call"] * 6
    # ...so every result equals the same request run alone.
    alone = engine.synthesize(_profile_request(target, LONG, seed=3))
    assert np.array_equal(results[3].samples, alone.samples)


def test_the_seed_is_set_immediately_before_every_upstream_call(
    loaded: EngineFactory, target: VoiceTarget
) -> None:
    engine = loaded(3, max_segment_chars=80)
    engine.synthesize(_profile_request(target, LONG, seed=1234, cross_lingual=True))
    events = [(kind, f) for kind, f in _events() if kind in ("seed", "call")]
    assert len(events) > 4, "the adapter split the cross-lingual text into several calls"
    for (kind, fields), (next_kind, call) in zip(events[::2], events[1::2], strict=True):
        assert (kind, fields["seed"]) == ("seed", 1234) and next_kind == "call"
        assert call["torch_seed"] == 1234 and call["inference_mode"] is True


def test_same_request_same_samples_other_seed_other_samples(
    loaded: EngineFactory, target: VoiceTarget
) -> None:
    engine = loaded(3)
    first = engine.synthesize(_profile_request(target, seed=7))
    torch.rand(1000)  # whatever else used the RNG in between must not matter
    second = engine.synthesize(_profile_request(target, seed=7))
    other = engine.synthesize(_profile_request(target, seed=8))
    assert np.array_equal(first.samples, second.samples)
    assert not np.array_equal(
        first.samples[: len(other.samples)], other.samples[: len(first.samples)]
    )


def test_speed_reaches_upstream_outside_streaming(
    loaded: EngineFactory, target: VoiceTarget
) -> None:
    engine = loaded(3)
    normal = engine.synthesize(_profile_request(target))
    fast = engine.synthesize(_profile_request(target, speed=2.0))
    assert standin().calls()[-1]["speed"] == 2.0
    assert fast.duration_seconds == pytest.approx(normal.duration_seconds / 2, rel=0.01)


def test_streaming_resets_the_chunk_size_before_every_call(
    loaded: EngineFactory, target: VoiceTarget
) -> None:
    engine = loaded(3)
    assert isinstance(engine, StreamingEngine)
    firsts = []
    for _ in range(3):
        chunks = list(engine.stream(_profile_request(target, SENTENCE)))
        assert len(chunks) > 1 and all(c.sample_rate == 24_000 for c in chunks)
        firsts.append(len(chunks[0].samples))
    assert firsts == [25 * 960] * 3
    assert [c["hop"] for c in standin().calls()] == [25, 25, 25]
    assert all(c["stream"] for c in standin().calls())


def test_without_the_reset_upstreams_chunks_grow(
    loaded: EngineFactory, target: VoiceTarget
) -> None:
    """Sanity of the stand-in: the hop bug of upstream (PR #1849) is really there."""
    model = importlib_model(loaded(3))
    prompt = f"{SYSTEM_PROMPT}{END_OF_PROMPT}{TRANSCRIPT}"
    firsts = []
    for _ in range(2):
        chunks = list(
            model.inference_zero_shot(SENTENCE, prompt, target.reference_path, stream=True)
        )
        firsts.append(chunks[0]["tts_speech"].shape[1])
    assert firsts[0] == 25 * 960 and firsts[1] > 25 * 960


def test_stream_holds_the_model_until_closed(loaded: EngineFactory, target: VoiceTarget) -> None:
    engine = loaded(3)
    stream = engine.stream(_profile_request(target, LONG))
    next(stream)
    other = threading.Thread(target=engine.synthesize, args=(_profile_request(target),))
    other.start()
    other.join(timeout=0.5)
    assert other.is_alive(), "a job ran while a stream held the model"
    stream.close()
    other.join(timeout=30)
    assert not other.is_alive()
    assert standin().max_active == 1


def test_a_stream_closed_early_leaves_no_upstream_state(
    loaded: EngineFactory, target: VoiceTarget
) -> None:
    engine = loaded(3)
    inner = importlib_model(engine).model
    with contextlib.closing(engine.stream(_profile_request(target, LONG))) as stream:
        next(stream)
        assert len(inner.tts_speech_token_dict) == 1
    assert inner.tts_speech_token_dict == {}, "upstream drops it only at the generator's end"
    assert len(list(engine.stream(_profile_request(target)))) > 1


def test_stream_refuses_speed(loaded: EngineFactory, target: VoiceTarget) -> None:
    with pytest.raises(InvalidRequest):
        loaded(3).stream(_profile_request(target, speed=1.5))


def test_built_in_speakers(loaded: EngineFactory) -> None:
    engine = loaded(3, model_speakers=("中文女", "英文男"), speakers=["英文男"])
    assert engine.voices() == ["英文男"] and engine.default_voice() == "英文男"
    engine.synthesize(SynthesisRequest(LONG, voice="英文男"))
    calls = standin().calls()
    assert {c["method"] for c in calls} == {"inference_sft"}
    assert all(c["tts_text"].startswith(f"{SYSTEM_PROMPT}{END_OF_PROMPT}") for c in calls)


def test_a_configured_speaker_missing_from_the_model_fails_the_load(tmp_path: Path) -> None:
    engine = engine_for(make_model_dir(tmp_path / "m"), speakers=["nobody"])
    with pytest.raises(EngineUnavailable, match="nobody"):
        engine.load()


def test_no_built_in_speakers_means_profiles_only(loaded: EngineFactory) -> None:
    engine = loaded(3)
    assert engine.voices() == [] and engine.default_voice() == "clone"
    with pytest.raises(Exception, match="no built-in speakers") as caught:
        engine.synthesize(SynthesisRequest(SENTENCE, voice="clone"))
    assert getattr(caught.value, "code", None) == "unknown_voice"


def test_load_warms_up_before_it_returns(tmp_path: Path) -> None:
    engine = engine_for(make_model_dir(tmp_path / "m"))
    standin_module = standin()
    standin_module.reset()
    engine.load()
    [call] = standin_module.calls()
    assert call["method"] == "inference_cross_lingual"
    cold = engine_for(make_model_dir(tmp_path / "n"), warmup=False)
    standin_module.reset()
    cold.load()
    assert standin_module.calls() == []


def test_gpu_cache_is_released_after_every_job(
    loaded: EngineFactory, target: VoiceTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = loaded(3)
    released: list[int] = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: released.append(1))
    engine.synthesize(_profile_request(target))
    assert len(released) == 1
    with contextlib.closing(engine.stream(_profile_request(target))) as stream:
        next(stream)
    assert len(released) == 2


def test_non_finite_output_fails_the_job(loaded: EngineFactory, target: VoiceTarget) -> None:
    engine = loaded(3)
    set_faults(Path(importlib_model(engine).model_dir), {"nan": True})
    with pytest.raises(EngineOutputInvalid) as caught:
        engine.synthesize(_profile_request(target))
    assert caught.value.code == "engine_output_invalid"
