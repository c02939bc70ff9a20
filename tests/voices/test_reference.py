"""Reference validation: real speech passes in every container; each bad recording gets its code."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steadyvoice.engines.base import SynthesisRequest
from steadyvoice.engines.piper import PiperEngine
from steadyvoice.errors import ReferenceInvalid
from steadyvoice.settings import PiperSettings, VoiceSettings
from steadyvoice.voices.reference import Reference, validate_reference

Samples = npt.NDArray[np.float32]

TEXT = (
    "Good morning. The weather was bright, and the train was on time. "
    "We walked along the river and talked about the summer."
)
LIMITS = VoiceSettings()
RATE = 22_050


@pytest.fixture(scope="module")
def speech() -> Samples:
    """Piper's ``joe`` reading ``TEXT`` (22 050 Hz), at half scale like a sensible recording."""
    engine = PiperEngine(PiperSettings())
    engine.load()
    audio = engine.synthesize(SynthesisRequest(text=TEXT, voice="joe"))
    assert audio.sample_rate == RATE
    assert 5.0 <= audio.duration_seconds <= 8.0
    return np.asarray(0.5 * audio.samples / np.max(np.abs(audio.samples)), dtype=np.float32)


def encode(
    samples: Samples, rate: int = RATE, fmt: str = "WAV", subtype: str | None = None
) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def resample(samples: Samples, rate: int) -> Samples:
    """Linear-interpolation resampling: crude, but plenty for building test files."""
    count = round(len(samples) * rate / RATE)
    positions = np.arange(count) * (RATE / rate)
    return np.asarray(np.interp(positions, np.arange(len(samples)), samples), dtype=np.float32)


def silence(seconds: float, rate: int = RATE) -> Samples:
    return np.zeros(round(seconds * rate), dtype=np.float32)


def white_noise(seconds: float, rms: float, seed: int = 0) -> Samples:
    rng = np.random.default_rng(seed)
    return (rms * rng.standard_normal(round(seconds * RATE))).astype(np.float32)


def rms(samples: Samples) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def refusal(data: bytes, limits: VoiceSettings = LIMITS) -> ReferenceInvalid:
    with pytest.raises(ReferenceInvalid) as caught:
        validate_reference(data, limits)
    return caught.value


# --- accepted -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "subtype"),
    [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS"), ("MP3", "MPEG_LAYER_III")],
)
def test_clean_speech_is_accepted_in_every_container(
    speech: Samples, fmt: str, subtype: str
) -> None:
    # Only bytes reach the validator: no file name, so the format comes from the content.
    ref = validate_reference(encode(speech, fmt=fmt, subtype=subtype), LIMITS)
    assert isinstance(ref, Reference)
    assert (ref.format, ref.subtype, ref.sample_rate, ref.channels) == (fmt, subtype, RATE, 1)
    assert ref.samples.dtype == np.float32 and ref.samples.ndim == 1
    assert float(np.max(np.abs(ref.samples))) <= 1.0
    assert ref.file_seconds == pytest.approx(len(speech) / RATE, abs=0.06)
    assert 0 <= ref.speech_start < ref.speech_end <= len(ref.samples)
    assert ref.speech_seconds == pytest.approx((ref.speech_end - ref.speech_start) / RATE)
    assert 4.5 <= ref.speech_seconds <= 8.0
    assert ref.measurements["snr_db"] >= LIMITS.min_snr_db
    assert ref.measurements["speech_dbfs"] >= LIMITS.min_speech_dbfs
    assert ref.measurements["clipped_fraction"] <= LIMITS.max_clipped_fraction
    assert all(np.isfinite(v) for v in ref.measurements.values())


def test_validation_is_deterministic(speech: Samples) -> None:
    data = encode(speech, fmt="OGG", subtype="VORBIS")
    first, second = validate_reference(data, LIMITS), validate_reference(data, LIMITS)
    assert first.measurements == second.measurements
    assert np.array_equal(first.samples, second.samples)


def test_near_identical_stereo_is_downmixed(speech: Samples) -> None:
    stereo = np.stack([speech, 0.995 * speech + white_noise(len(speech) / RATE, 1e-4)], axis=1)
    ref = validate_reference(encode(stereo), LIMITS)
    assert ref.channels == 2 and ref.samples.ndim == 1
    assert ref.measurements["side_db"] < LIMITS.stereo_max_side_db
    assert np.allclose(ref.samples, stereo.mean(axis=1), atol=1e-3)


def test_leading_and_trailing_silence_is_trimmed(speech: Samples) -> None:
    bare = validate_reference(encode(speech), LIMITS)
    padded_audio = np.concatenate([silence(2.0), speech, silence(3.0)])
    padded_audio += white_noise(len(padded_audio) / RATE, 10 ** (-75 / 20), seed=1)
    padded = validate_reference(encode(padded_audio), LIMITS)
    assert padded.file_seconds == pytest.approx(bare.file_seconds + 5.0, abs=0.01)
    assert padded.speech_seconds == pytest.approx(bare.speech_seconds, abs=0.06)
    assert padded.speech_start / RATE == pytest.approx(2.0 + bare.speech_start / RATE, abs=0.04)
    assert padded.measurements["leading_silence_seconds"] >= 2.0
    assert padded.measurements["trailing_silence_seconds"] >= 3.0


def test_thirty_seconds_at_48k_validates_well_under_a_second(speech: Samples) -> None:
    long = resample(np.tile(speech, 6)[: 29 * RATE], 48_000)
    data = encode(long, 48_000)
    started = time.perf_counter()
    ref = validate_reference(data, LIMITS)
    assert time.perf_counter() - started < 1.0
    assert ref.sample_rate == 48_000 and 27.0 < ref.speech_seconds <= 29.0


# --- refused --------------------------------------------------------------------------------

Build = Callable[[Samples], bytes]

MEASURED_REFUSALS: list[tuple[str, Build, str]] = [
    ("8 kHz", lambda s: encode(resample(s, 8_000), 8_000), "reference_sample_rate_too_low"),
    (
        "true stereo",
        lambda s: encode(np.stack([s, np.roll(s, RATE // 2)], axis=1)),
        "reference_not_mono",
    ),
    ("white noise", lambda s: encode(white_noise(10.0, 0.1)), "reference_no_speech"),
    ("digital silence", lambda s: encode(silence(10.0)), "reference_no_speech"),
    (
        "steady hum",
        lambda s: encode(
            (0.1 * np.sign(np.sin(2 * np.pi * 120 * np.arange(10 * RATE) / RATE))).astype(
                np.float32
            )
        ),
        "reference_no_speech",
    ),
    (
        "1.5 s of speech padded to 10 s",
        lambda s: encode(np.concatenate([s[: round(1.5 * RATE)], silence(8.5)])),
        "reference_too_short",
    ),
    ("40 s of speech", lambda s: encode(np.tile(s, 6)), "reference_too_long"),
    ("speech at -60 dBFS", lambda s: encode(s * (10**-3 / rms(s))), "reference_too_quiet"),
    ("clipped x8", lambda s: encode(np.clip(8 * s, -1.0, 1.0)), "reference_clipped"),
    (
        "clipped x8 then turned down",
        lambda s: encode(0.7 * np.clip(8 * s, -1.0, 1.0)),
        "reference_clipped",
    ),
    (
        "white noise at 5 dB SNR",
        lambda s: encode(s + white_noise(len(s) / RATE, rms(s) * 10 ** (-5 / 20))),
        "reference_too_noisy",
    ),
]


@pytest.mark.parametrize(
    ("build", "code"),
    [pytest.param(build, code, id=name) for name, build, code in MEASURED_REFUSALS],
)
def test_bad_recordings_are_refused_with_measured_value_and_limit(
    speech: Samples, build: Build, code: str
) -> None:
    error = refusal(build(speech))
    assert error.code == code
    assert isinstance(error.details["measured"], float)
    assert isinstance(error.details["limit"], float)
    assert error.details["unit"] in {"Hz", "s", "dB", "dBFS", "fraction"}
    assert error.message


def test_refusal_reports_the_sample_rate_and_its_limit(speech: Samples) -> None:
    error = refusal(encode(resample(speech, 8_000), 8_000))
    assert error.details == {"measured": 8000.0, "limit": 16000.0, "unit": "Hz"}
    assert "8000 Hz" in error.message and "16 kHz" in error.message


def test_more_than_two_channels_is_not_mono(speech: Samples) -> None:
    assert refusal(encode(np.stack([speech] * 3, axis=1))).code == "reference_not_mono"


def test_file_longer_than_max_file_seconds_is_refused_without_reading_it_all() -> None:
    # Two minutes of silence compress to almost nothing in FLAC: the length cap must hold anyway.
    data = encode(silence(LIMITS.max_file_seconds + 5, 16_000), 16_000, "FLAC")
    error = refusal(data)
    assert error.code == "reference_too_long"
    assert error.details["measured"] >= LIMITS.max_file_seconds
    assert error.details["limit"] == LIMITS.max_file_seconds


def test_aiff_is_an_unsupported_format(speech: Samples) -> None:
    assert refusal(encode(speech, fmt="AIFF")).code == "reference_format_unsupported"


@pytest.mark.parametrize(
    "data", [b"", b"\x00" * 64, bytes(range(256)) * 16], ids=["empty", "zeros", "ramp"]
)
def test_non_audio_bytes_are_unreadable(data: bytes) -> None:
    assert refusal(data).code == "reference_unreadable"


def test_random_bytes_are_unreadable() -> None:
    data = np.random.default_rng(7).bytes(8192)
    assert refusal(data).code == "reference_unreadable"


@pytest.mark.parametrize("cut", [10, 44, 100])
@pytest.mark.parametrize(("fmt", "subtype"), [("WAV", "PCM_16"), ("FLAC", None), ("OGG", None)])
def test_truncated_files_are_unreadable(
    speech: Samples, fmt: str, subtype: str | None, cut: int
) -> None:
    data = encode(speech, fmt=fmt, subtype=subtype)[:cut]
    assert refusal(data).code == "reference_unreadable"


def test_a_wav_cut_in_the_middle_is_unreadable(speech: Samples) -> None:
    data = encode(speech)
    assert refusal(data[: len(data) // 2]).code == "reference_unreadable"


# --- fuzz -----------------------------------------------------------------------------------


def _validate_or_refuse(data: bytes) -> None:
    try:
        ref = validate_reference(data, LIMITS)
    except ReferenceInvalid as error:
        assert error.code.startswith("reference_")
    else:
        assert ref.samples.ndim == 1 and len(ref.samples) > 0


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_escape(data: bytes) -> None:
    _validate_or_refuse(data)


_FLIP = st.tuples(st.integers(0, 10_000), st.integers(0, 255))  # (position, new byte)


@pytest.fixture(scope="module")
def small_wav(speech: Samples) -> bytes:
    return encode(resample(speech[: 4 * RATE], 16_000), 16_000)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    flips=st.lists(_FLIP, min_size=1, max_size=12),
    keep=st.floats(0.0, 1.0),
)
def test_damaged_wav_never_escapes(
    small_wav: bytes, flips: list[tuple[int, int]], keep: float
) -> None:
    data = bytearray(small_wav)
    for index, value in flips:
        # Most flips land in the header, where they do the most damage.
        data[index % 128 if index % 2 else index % len(data)] = value
    _validate_or_refuse(bytes(data[: max(1, round(len(data) * keep))]))
