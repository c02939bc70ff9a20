"""Voice adaptation: small rate-independent analyses, same bytes everywhere, a voice that moves."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from steadyvoice.engines import adaptation_world as world
from steadyvoice.engines.adaptation import (
    SCHEME,
    SOURCE_F0_LOG_MEAN,
    SOURCE_LTAS_DB,
    _formant_scale,
    adapt,
    adaptation_version,
    analyse_reference,
)
from steadyvoice.engines.base import SynthesisRequest
from steadyvoice.engines.piper import PiperEngine
from steadyvoice.errors import (
    EngineError,
    ReferenceNoSpeech,
    ReferenceNotMono,
    ReferenceSampleRateTooLow,
)
from steadyvoice.settings import PiperSettings

F32 = npt.NDArray[np.float32]
RATE = 22_050
SOURCE_TEXT = "The quick brown fox jumps over the lazy dog. Please call Stella at the station."
# The reference speaker says something else: similarity must come from the voice, not the words.
REFERENCE_TEXT = (
    "A rainbow is a division of white light into many beautiful colors. When the sunlight "
    "strikes raindrops in the air, they act as a prism and form a rainbow."
)
PRIOR_TEXT = (
    "It was late. The lights were still on, and the kettle was warm. Nobody said a word. "
    "The birch canoe slid on the smooth planks. Rice is often served in round bowls."
)


@pytest.fixture(scope="module")
def speak() -> Callable[[str], F32]:
    engine = PiperEngine(PiperSettings())
    engine.load()

    def speak(text: str) -> F32:
        audio = engine.synthesize(SynthesisRequest(text=text, voice="joe", seed=42))
        assert audio.sample_rate == RATE
        return audio.samples

    return speak


@pytest.fixture(scope="module")
def source(speak: Callable[[str], F32]) -> F32:
    return speak(SOURCE_TEXT)


def _transform(samples: F32, f0_scale: float, formant_scale: float) -> F32:
    """A different speaker made from joe with WORLD, independently of the code under test."""
    pw = world.load_pyworld()
    x = samples.astype(np.float64)
    # dio, not harvest: on Piper's output harvest often drops an octave, which would make the
    # reference a voice with octave jumps rather than a plain higher or lower speaker.
    f0, times = pw.dio(x, RATE, frame_period=5.0)
    f0 = pw.stonemask(x, f0, times, RATE)
    envelope = pw.cheaptrick(x, f0, times, RATE)
    aperiodicity = pw.d4c(x, f0, times, RATE)
    bins = np.arange(envelope.shape[1], dtype=np.float64)
    warped = np.stack([np.interp(bins / formant_scale, bins, frame) for frame in envelope])
    y = pw.synthesize(f0 * f0_scale, warped, aperiodicity, RATE, 5.0)
    return (0.9 * y / np.max(np.abs(y))).astype(np.float32)


@pytest.fixture(scope="module")
def high_reference(speak: Callable[[str], F32]) -> F32:
    """Female-like: F0 x 1.7, formants x 1.18."""
    return _transform(speak(REFERENCE_TEXT), 1.7, 1.18)


@pytest.fixture(scope="module")
def low_reference(speak: Callable[[str], F32]) -> F32:
    """A deeper male: F0 x 0.65, same formants."""
    return _transform(speak(REFERENCE_TEXT), 0.65, 1.0)


def _resample(samples: F32, rate: int, new_rate: int) -> F32:
    spectrum = np.fft.rfft(samples.astype(np.float64))
    n = round(samples.size * new_rate / rate)
    kept = np.zeros(n // 2 + 1, dtype=np.complex128)
    k = min(kept.size, spectrum.size)
    kept[:k] = spectrum[:k]
    return (np.fft.irfft(kept, n) * (n / samples.size)).astype(np.float32)


def _median_f0(samples: F32, rate: int = RATE) -> float:
    f0 = world.analyse(samples, rate, aperiodicity=False).f0
    return float(np.median(f0[f0 > 0]))


def test_analysis_is_small_json_with_the_scheme(high_reference: F32) -> None:
    analysis = analyse_reference(high_reference, RATE)
    encoded = json.dumps(analysis, allow_nan=False)
    assert json.loads(encoded) == analysis
    assert len(encoded) < 2_000
    assert analysis["scheme"] == SCHEME
    assert len(analysis["ltas_db"]) == world.BAND_COUNT
    assert 0.2 < analysis["voiced_fraction"] <= 1.0
    assert SCHEME in adaptation_version() and "pyworld" in adaptation_version()


def test_analysis_does_not_depend_on_the_sample_rate(high_reference: F32) -> None:
    base = analyse_reference(high_reference, RATE)
    for rate in (16_000, 48_000):
        other = analyse_reference(_resample(high_reference, RATE, rate), rate)
        assert abs(other["f0_log_mean"] - base["f0_log_mean"]) < 0.02, rate
        assert abs(other["f0_log_std"] - base["f0_log_std"]) < 0.03, rate
        difference = np.abs(np.subtract(other["ltas_db"], base["ltas_db"]))
        assert float(np.max(difference)) < 2.0, (rate, difference.round(1).tolist())


def test_source_constants_still_describe_the_joe_voice(speak: Callable[[str], F32]) -> None:
    analysis = analyse_reference(speak(PRIOR_TEXT), RATE)
    assert abs(analysis["f0_log_mean"] - SOURCE_F0_LOG_MEAN) < math.log(1.08)
    correlation = np.corrcoef(analysis["ltas_db"], SOURCE_LTAS_DB)[0, 1]
    assert correlation > 0.97
    assert _formant_scale(np.array(analysis["ltas_db"])) == 1.0


def test_adapt_gives_the_same_bytes_in_process_and_in_a_fresh_process(
    source: F32, high_reference: F32, tmp_path: Path
) -> None:
    analysis = analyse_reference(high_reference, RATE)
    first, second = adapt(source, RATE, analysis), adapt(source, RATE, analysis)
    assert first.dtype == np.float32 and first.shape == source.shape
    assert first.tobytes() == second.tobytes()
    np.save(tmp_path / "source.npy", source)
    (tmp_path / "analysis.json").write_text(json.dumps(analysis))
    code = (
        "import hashlib, json, sys\n"
        "import numpy as np\n"
        "from steadyvoice.engines.adaptation import adapt\n"
        "x = np.load(sys.argv[1])\n"
        "analysis = json.loads(open(sys.argv[2]).read())\n"
        f"print(hashlib.sha256(adapt(x, {RATE}, analysis).tobytes()).hexdigest())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "source.npy"), str(tmp_path / "analysis.json")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == hashlib.sha256(first.tobytes()).hexdigest()


def test_output_is_bounded_audio_at_the_input_peak(source: F32, high_reference: F32) -> None:
    out = adapt(source, RATE, analyse_reference(high_reference, RATE))
    assert np.all(np.isfinite(out))
    peak = float(np.max(np.abs(out)))
    assert peak <= 1.0
    assert peak == pytest.approx(float(np.max(np.abs(source))), rel=1e-6)


@pytest.mark.parametrize("which", ["high_reference", "low_reference"])
def test_pitch_moves_to_the_reference(which: str, source: F32, request: Any) -> None:
    reference: F32 = request.getfixturevalue(which)
    out = adapt(source, RATE, analyse_reference(reference, RATE))
    target, before, after = _median_f0(reference), _median_f0(source), _median_f0(out)
    assert abs(after / target - 1.0) < 0.15, (before, after, target)
    assert abs(math.log(after / target)) < abs(math.log(before / target))


def _voice_encoder() -> tuple[Any, Any]:
    from resemblyzer import VoiceEncoder, preprocess_wav

    return VoiceEncoder("cpu", verbose=False), preprocess_wav


def test_adapted_voice_is_closer_to_the_reference_speaker(source: F32, high_reference: F32) -> None:
    encoder, preprocess = _voice_encoder()

    def embed(samples: F32) -> npt.NDArray[np.float32]:
        embedding: npt.NDArray[np.float32] = encoder.embed_utterance(
            preprocess(samples, source_sr=RATE)
        )
        return embedding

    reference = embed(high_reference)
    before = float(embed(source) @ reference)
    after = float(embed(adapt(source, RATE, analyse_reference(high_reference, RATE))) @ reference)
    assert after >= before + 0.05, (before, after)


def _valid() -> dict[str, Any]:
    return {
        "scheme": SCHEME,
        "f0_log_mean": 5.3,
        "f0_log_std": 0.2,
        "voiced_fraction": 0.5,
        "ltas_db": [0.0] * world.BAND_COUNT,
    }


def _without(key: str) -> dict[str, Any]:
    analysis = _valid()
    del analysis[key]
    return analysis


@pytest.mark.parametrize(
    "analysis",
    [
        None,
        [],
        {},
        _without("scheme"),
        _without("f0_log_mean"),
        _without("ltas_db"),
        {**_valid(), "scheme": "world-ltas-0"},
        {**_valid(), "f0_log_mean": float("nan")},
        {**_valid(), "f0_log_std": "wide"},
        {**_valid(), "f0_log_mean": 12.0},
        {**_valid(), "ltas_db": [0.0] * (world.BAND_COUNT - 1)},
        {**_valid(), "ltas_db": [float("nan")] * world.BAND_COUNT},
        {**_valid(), "ltas_db": "flat"},
    ],
)
def test_malformed_analysis_is_an_engine_error(analysis: Any, source: F32) -> None:
    with pytest.raises(EngineError, match="analysis"):
        adapt(source, RATE, analysis)


def test_a_valid_hand_made_analysis_is_accepted(source: F32) -> None:
    assert adapt(source, RATE, _valid()).shape == source.shape


@pytest.mark.parametrize("length", [0, 100, RATE])
def test_empty_short_or_silent_input_gives_silence_of_the_same_length(length: int) -> None:
    out = adapt(np.zeros(length, dtype=np.float32), RATE, _valid())
    assert out.dtype == np.float32 and out.shape == (length,)
    assert not np.any(out)


def test_stereo_input_is_refused(source: F32) -> None:
    with pytest.raises(EngineError, match="mono"):
        adapt(np.stack([source, source], axis=1), RATE, _valid())


def test_unusable_references_are_refused(high_reference: F32) -> None:
    with pytest.raises(ReferenceNoSpeech):
        analyse_reference(np.zeros(5 * RATE, dtype=np.float32), RATE)
    with pytest.raises(ReferenceNotMono):
        analyse_reference(np.stack([high_reference, high_reference]), RATE)
    with pytest.raises(ReferenceSampleRateTooLow):
        analyse_reference(_resample(high_reference, RATE, 8_000), 8_000)


# adapt()'s bytes for a fixed synthetic input, per ALGORITHM. If this fails, the output of
# adapt() changed: bump ALGORITHM in steadyvoice/engines/adaptation.py (so the engine version
# changes with it) and record the new digest here. The same digest came from two separate
# source builds of pyworld on this machine type.
GOLDEN = {1: "c13e3a858f546b156adc1b4dd0967c8f0f522cfed9e77cb97a4894cf2fd2a0b7"}


def _harmonic(f0_base: float, seconds: float) -> F32:
    t = np.arange(int(RATE * seconds)) / RATE
    f0 = f0_base * (1 + 0.15 * np.sin(2 * np.pi * 1.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 40))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 2.5 * t)
    return np.asarray(0.3 * x * envelope / np.max(np.abs(x)), dtype=np.float32)


def test_the_output_changes_only_with_a_new_algorithm_number() -> None:
    from steadyvoice.engines.adaptation import ALGORITHM

    analysis = analyse_reference(_harmonic(220.0, 4.0), RATE)
    digest = hashlib.sha256(adapt(_harmonic(110.0, 2.0), RATE, analysis).tobytes()).hexdigest()
    assert GOLDEN.get(ALGORITHM) == digest, f"adapt() output changed: bump ALGORITHM ({digest})"
    assert f"world{ALGORITHM}-" in adaptation_version()
