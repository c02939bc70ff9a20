"""Audio formats: every format round-trips real speech at the right rate and length, lossless
ones exactly, lossy ones closely after their (measured) codec delay; same samples, same bytes."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
from speech import joe_speech  # type: ignore[import-not-found]

from steadyvoice.audio.formats import CONTENT_TYPES, EXTENSIONS, FORMATS, decode, encode
from steadyvoice.audio.pcm import WAV_HEADER_BYTES
from steadyvoice.audio.resample import resample
from steadyvoice.audio.wav import encode_wav

Samples = npt.NDArray[np.float32]

LOSSLESS = ("wav", "flac", "pcm")
LOSSY = ("mp3", "aac", "opus")
RATE = 22_050
OPUS_RATE = 24_000  # what 22.05 kHz input is resampled to before libopus
OPUS_DECODED_RATE = 48_000

# Samples of delay before the audio in the decoded output, at the decoded rate (measured).
DELAY = {"mp3": 1105, "aac": 1024, "opus": 0}
# Waveform SNR after delay alignment, measured on joe_speech(): mp3 24.4 dB, aac 30.6 dB,
# opus 19.2 dB (perceptual codecs do not keep the waveform closer than this).
MIN_SNR_DB = {"mp3": 20.0, "aac": 26.0, "opus": 16.0}


def decoded_length(fmt: str, n: int) -> int:
    """What a decoder hands back for ``n`` samples at 22.05 kHz (measured, exact).

    mp3 (MPEG-2 layer III, 576-sample frames): delay 1105, then LAME pads past the end by
    48 samples and up to a whole frame. aac: 1024 priming samples, padded to whole 1024-sample
    frames. opus: exact, at 48 kHz after the 24 kHz encode.
    """
    if fmt == "mp3":
        return math.ceil((n + DELAY["mp3"] + 48) / 576) * 576
    if fmt == "aac":
        return math.ceil((n + DELAY["aac"]) / 1024) * 1024
    return 2 * round(n * OPUS_RATE / RATE)


@pytest.fixture(scope="module")
def speech() -> Samples:
    samples, rate = joe_speech()
    assert rate == RATE
    return np.asarray(samples, dtype=np.float32)


def quantized(samples: Samples) -> Samples:
    """``samples`` as 16-bit PCM holds them (encode_wav's quantization), read back as float."""
    ints = np.frombuffer(encode_wav(samples, RATE)[WAV_HEADER_BYTES:], dtype="<i2")
    return (ints / np.float32(32768)).astype(np.float32)


def best_lag(reference: Samples, decoded: Samples, max_lag: int = 3000) -> int:
    """The delay of ``reference`` inside ``decoded`` (cross-correlation peak)."""
    size = len(reference) + len(decoded)
    spectrum = np.fft.rfft(decoded, size) * np.conj(np.fft.rfft(reference, size))
    correlation = np.fft.irfft(spectrum, size)[: max_lag + 1]
    return int(np.argmax(correlation))


def snr_db(reference: Samples, aligned: Samples) -> float:
    error = aligned.astype(np.float64) - reference
    return float(10 * np.log10(np.sum(np.square(reference, dtype=np.float64)) / np.sum(error**2)))


def test_tables_cover_the_openai_formats() -> None:
    assert FORMATS == ("mp3", "opus", "aac", "flac", "wav", "pcm")
    assert set(CONTENT_TYPES) == set(EXTENSIONS) == set(FORMATS)
    assert CONTENT_TYPES == {
        "mp3": "audio/mpeg",
        "opus": "audio/ogg",
        "aac": "audio/aac",
        "flac": "audio/flac",
        "wav": "audio/wav",
        "pcm": "audio/pcm",
    }
    assert EXTENSIONS["opus"] == "opus"


def test_the_installed_wheel_carries_its_own_encoders() -> None:
    # No system ffmpeg is involved: these come from the libraries inside PyAV's wheel.
    assert {"libmp3lame", "libopus", "aac"} <= av.codecs_available
    assert {"mp3", "ogg", "adts"} <= av.formats_available


@pytest.mark.parametrize("fmt", ["ogg", "MP3", "", "wave"])
def test_unknown_formats_are_refused(speech: Samples, fmt: str) -> None:
    with pytest.raises(ValueError, match="unknown audio format"):
        encode(speech, RATE, fmt)
    with pytest.raises(ValueError, match="unknown audio format"):
        decode(b"", fmt)


def test_wav_is_exactly_encode_wav(speech: Samples) -> None:
    assert encode(speech, RATE, "wav") == encode_wav(speech, RATE)
    assert encode(speech, RATE, "pcm") == encode_wav(speech, RATE)[WAV_HEADER_BYTES:]


@pytest.mark.parametrize("fmt", LOSSLESS)
def test_lossless_formats_round_trip_bit_exactly(speech: Samples, fmt: str) -> None:
    data = encode(speech, RATE, fmt)
    decoded, rate = decode(data, fmt, sample_rate=RATE)
    assert rate == RATE
    assert decoded.dtype == np.float32
    np.testing.assert_array_equal(decoded, quantized(speech))
    assert np.max(np.abs(decoded - speech)) <= 1 / 32768
    assert encode(decoded, rate, fmt) == data


@pytest.mark.parametrize("fmt", LOSSY)
def test_lossy_formats_keep_the_speech(speech: Samples, fmt: str) -> None:
    decoded, rate = decode(encode(speech, RATE, fmt), fmt)
    reference = speech
    if fmt == "opus":
        assert rate == OPUS_DECODED_RATE
        reference = resample(speech, RATE, OPUS_DECODED_RATE)
    else:
        assert rate == RATE
    assert decoded.dtype == np.float32
    assert len(decoded) == decoded_length(fmt, len(speech))
    lag = best_lag(reference, decoded)
    assert lag == DELAY[fmt]
    aligned = decoded[lag : lag + len(reference)]
    assert np.corrcoef(reference, aligned)[0, 1] > 0.99
    assert snr_db(reference, aligned) > MIN_SNR_DB[fmt]


@pytest.mark.parametrize("rate", [8_000, 16_000, 24_000, 44_100, 48_000])
@pytest.mark.parametrize("fmt", FORMATS)
def test_other_engine_rates(speech: Samples, fmt: str, rate: int) -> None:
    clip = resample(speech[:RATE], RATE, rate)
    decoded, decoded_rate = decode(encode(clip, rate, fmt), fmt, sample_rate=rate)
    assert decoded_rate == (OPUS_DECODED_RATE if fmt == "opus" else rate)
    seconds = len(decoded) / decoded_rate
    if fmt in LOSSLESS:
        np.testing.assert_array_equal(decoded, quantized(clip))
    elif fmt == "opus":
        assert seconds == pytest.approx(1.0, abs=1 / rate)
    else:  # codec delay and padding: at most about two frames
        assert 1.0 < seconds < 1.0 + 3 * 1152 / rate


@pytest.mark.parametrize("fmt", FORMATS)
def test_silence_stays_silent(fmt: str) -> None:
    silence = np.zeros(RATE, dtype=np.float32)
    decoded, rate = decode(encode(silence, RATE, fmt), fmt, sample_rate=RATE)
    assert rate == (OPUS_DECODED_RATE if fmt == "opus" else RATE)
    assert len(decoded) == (RATE if fmt in LOSSLESS else decoded_length(fmt, RATE))
    assert np.max(np.abs(decoded)) < 1e-4


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_millisecond_encodes_and_decodes(speech: Samples, fmt: str) -> None:
    clip = speech[20_000 : 20_000 + RATE // 1000]
    decoded, rate = decode(encode(clip, RATE, fmt), fmt, sample_rate=RATE)
    if fmt in LOSSLESS:
        assert rate == RATE
        np.testing.assert_array_equal(decoded, quantized(clip))
    else:
        assert rate == (OPUS_DECODED_RATE if fmt == "opus" else RATE)
        assert len(decoded) == decoded_length(fmt, len(clip))


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_input_gives_no_audio(fmt: str) -> None:
    data = encode(np.zeros(0, dtype=np.float32), RATE, fmt)
    if fmt == "wav":
        assert data == encode_wav(np.zeros(0, dtype=np.float32), RATE)
        assert len(data) == WAV_HEADER_BYTES
    else:
        assert data == b""
    if fmt in ("wav", "pcm"):
        decoded, rate = decode(data, fmt, sample_rate=RATE)
        assert (len(decoded), rate) == (0, RATE)
    else:
        with pytest.raises(ValueError, match="not decodable"):
            decode(data, fmt)


def test_samples_are_clipped_and_must_be_mono(speech: Samples) -> None:
    loud = speech * 4
    for fmt in FORMATS:
        assert encode(loud, RATE, fmt) == encode(np.clip(loud, -1, 1), RATE, fmt)
    with pytest.raises(ValueError, match="mono"):
        encode(np.stack([speech, speech]), RATE, "wav")


def test_pcm_needs_its_rate_and_whole_samples() -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        decode(b"\x00\x00", "pcm")
    with pytest.raises(ValueError, match="odd length"):
        decode(b"\x00\x00\x00", "pcm", sample_rate=RATE)


@pytest.mark.parametrize("fmt", ["pcm", "wav", "flac", "mp3"])
def test_output_rate_resamples_first(speech: Samples, fmt: str) -> None:
    data = encode(speech, RATE, fmt, output_rate=24_000)
    assert data == encode(resample(speech, RATE, 24_000), 24_000, fmt)
    decoded, rate = decode(data, fmt, sample_rate=24_000)
    assert rate == 24_000
    if fmt in LOSSLESS:
        assert len(decoded) == round(len(speech) * 24_000 / RATE)


def test_garbage_is_not_decodable() -> None:
    for fmt in ("mp3", "aac", "opus", "wav", "flac"):
        with pytest.raises(ValueError, match="not decodable"):
            decode(b"this is not audio at all" * 40, fmt)


def _hashes(samples: Samples) -> dict[str, str]:
    return {fmt: hashlib.sha256(encode(samples, RATE, fmt)).hexdigest() for fmt in FORMATS}


ENCODE_IN_CHILD = """
import hashlib, json, sys
import numpy as np
from steadyvoice.audio.formats import FORMATS, encode
samples = np.load(sys.argv[1])
print(json.dumps({f: hashlib.sha256(encode(samples, 22050, f)).hexdigest() for f in FORMATS}))
"""


def test_same_samples_give_the_same_bytes_in_every_format(speech: Samples, tmp_path: Path) -> None:
    here = _hashes(speech)
    assert _hashes(speech.copy()) == here
    path = tmp_path / "speech.npy"
    np.save(path, speech)
    for _ in range(2):
        child = subprocess.run(
            [sys.executable, "-c", ENCODE_IN_CHILD, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert json.loads(child.stdout) == here
    assert len(set(here.values())) == len(FORMATS)
