"""The audio formats the API hands out (OpenAI's set), and one-shot encoding and decoding.

=======  =================  ==========================================================
format   content type       what it is
=======  =================  ==========================================================
mp3      audio/mpeg         MPEG audio layer III, LAME, 64 kbit/s CBR (PyAV)
opus     audio/ogg          Opus in Ogg, libopus, 32 kbit/s VBR, 8-48 kHz (PyAV)
aac      audio/aac          AAC-LC in ADTS, FFmpeg's encoder, 64 kbit/s (PyAV)
flac     audio/flac         FLAC, 16-bit, libFLAC (soundfile)
wav      audio/wav          16-bit PCM WAV, exactly :func:`encode_wav` (soundfile)
pcm      audio/pcm          raw signed 16-bit little-endian mono samples, no header
=======  =================  ==========================================================

Audio stays at the engine's sample rate unless ``output_rate`` asks for another (soxr). OpenAI's
``pcm`` is 24 kHz; ours is the engine's rate (22 050 Hz for Piper), so a client that assumes
24 kHz should ask for ``output_rate=24000`` or read the rate from the response. Opus alone
changes the rate by itself (see :mod:`steadyvoice.audio.lossy`).

Same samples, same bytes, in every format. Empty input encodes without error: WAV gives its
44-byte header and every other format gives ``b""`` (no audio, no bytes).
"""

from __future__ import annotations

import io
from typing import get_args

import numpy as np
import soundfile as sf

from steadyvoice.audio.lossy import CODECS, LossyEncoder, decode_lossy
from steadyvoice.audio.pcm import decode_pcm16, pcm16
from steadyvoice.audio.resample import resample
from steadyvoice.audio.wav import encode_wav
from steadyvoice.engines.base import FloatAudio
from steadyvoice.settings import AudioFormat

FORMATS: tuple[str, ...] = get_args(AudioFormat)

CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}

EXTENSIONS = {
    "mp3": "mp3",
    "opus": "opus",
    "aac": "aac",
    "flac": "flac",
    "wav": "wav",
    "pcm": "pcm",
}


def encoder_tag(fmt: str) -> str:
    """What encodes ``fmt``, for the engine version a job records (``""`` for wav and pcm,
    whose bytes follow from the samples alone).

    A different codec library may encode the same samples into other bytes, so the version
    of a job stored as mp3, opus, aac or flac names the library that made it.
    """
    check_format(fmt)
    if fmt in CODECS:
        import av

        return f"+{fmt}-av{av.__version__}-ffmpeg{av.ffmpeg_version_info}"
    if fmt == "flac":
        return f"+flac-sndfile{sf.__libsndfile_version__}"
    return ""


def check_format(fmt: str) -> None:
    """Raise ValueError unless ``fmt`` is one of :data:`FORMATS`."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown audio format {fmt!r}; expected one of {', '.join(FORMATS)}")


def mono_float32(samples: FloatAudio) -> FloatAudio:
    """``samples`` as contiguous 1-D float32 clipped to [-1, 1], as every encoder takes them."""
    audio = np.asarray(samples, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"expected mono 1-D samples, got shape {audio.shape}")
    return np.ascontiguousarray(np.clip(audio, -1.0, 1.0))


def encode(
    samples: FloatAudio, sample_rate: int, fmt: str, *, output_rate: int | None = None
) -> bytes:
    """``samples`` (mono float32 at ``sample_rate``) as a complete file in ``fmt``.

    ``output_rate`` resamples first (``pcm`` at 24 kHz, as OpenAI's is). The bytes equal what a
    :class:`~steadyvoice.audio.streaming.StreamEncoder` sends for the same audio, except the
    two size fields of the streamed WAV header.
    """
    check_format(fmt)
    audio = mono_float32(samples)
    if output_rate is not None and output_rate != sample_rate:
        audio, sample_rate = resample(audio, sample_rate, output_rate), output_rate
    if fmt == "wav":
        return encode_wav(audio, sample_rate)
    if fmt == "pcm":
        return pcm16(audio, sample_rate)
    if fmt == "flac":
        return encode_flac(audio, sample_rate)
    encoder = LossyEncoder(fmt, sample_rate)
    return encoder.feed(audio) + encoder.finish()


def encode_flac(samples: FloatAudio, sample_rate: int) -> bytes:
    """16-bit FLAC by libFLAC (through soundfile): deterministic, with length and MD5 in the
    header. libsndfile writes nothing for no samples, hence ``b""`` for empty input.

    It is given WAV's 16-bit samples, not floats: libsndfile rounds floats to 16 bits one way
    for WAV and another for FLAC (a step apart in about half the samples), and the lossless
    formats should all hold the same samples.
    """
    ints = np.frombuffer(pcm16(samples, sample_rate), dtype="<i2")
    buf = io.BytesIO()
    sf.write(buf, ints, sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def decode(data: bytes, fmt: str, *, sample_rate: int | None = None) -> tuple[FloatAudio, int]:
    """Mono float32 samples and their rate from ``data`` in ``fmt``.

    ``pcm`` has no header, so it needs ``sample_rate``; other formats carry their own (Opus
    decodes at 48 kHz). Raises ValueError for data that is not that format, including ``b""``
    for every format but ``pcm``.
    """
    check_format(fmt)
    if fmt == "pcm":
        if sample_rate is None:
            raise ValueError("decoding pcm needs its sample_rate")
        return decode_pcm16(data), sample_rate
    if fmt in CODECS:
        return decode_lossy(data, fmt)
    return _decode_soundfile(data, fmt)


def _decode_soundfile(data: bytes, fmt: str) -> tuple[FloatAudio, int]:
    try:
        audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except sf.LibsndfileError as exc:
        raise ValueError(f"not decodable as {fmt}: {exc}") from exc
    return np.ascontiguousarray(audio.mean(axis=1, dtype=np.float32)), int(rate)
