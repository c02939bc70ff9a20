"""Encoding audio while it is being made, sentence by sentence.

What each format sends, and how the streamed bytes compare with :func:`formats.encode` of all the
samples at once:

* ``mp3``, ``aac``, ``opus``: the same bytes. ``feed`` returns whatever whole frames and pages
  are ready and holds the rest until more audio or ``finish`` comes: measured on speech at
  22.05 kHz, at most about 155 ms of audio for mp3 (a frame plus LAME's lookahead), 140 ms for
  aac and 210 ms for opus (the Ogg muxer keeps its last 100 ms page back).
* ``pcm``: the same bytes, each chunk sent as soon as it is fed.
* ``wav``: a header with both sizes 0xFFFFFFFF (length unknown), then the PCM as it comes. It
  differs from the stored file in those two header fields only (bytes 4-8 and 40-44).
* ``flac``: held until ``finish``, then exactly the one-shot file. libFLAC writes the length and
  MD5 into the header at the end, and a FLAC stream without them (FFmpeg's streaming FLAC) is one
  that libsndfile, and so ``soundfile.read``, cannot open.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from steadyvoice.audio.formats import CONTENT_TYPES, check_format, encode_flac, mono_float32
from steadyvoice.audio.lossy import CODECS, LossyEncoder
from steadyvoice.audio.pcm import pcm16, streaming_wav_header
from steadyvoice.audio.resample import Resampler
from steadyvoice.engines.base import FloatAudio


class _Encoder(Protocol):
    def feed(self, samples: FloatAudio) -> bytes: ...

    def finish(self) -> bytes: ...


class StreamEncoder:
    """Encode one response in ``fmt`` from chunks of mono float32 audio at ``sample_rate``.

    Call :meth:`feed` with each chunk as it is made and send what it returns (possibly
    ``b""``), then send what :meth:`finish` returns. ``output_rate`` resamples on the way, as
    in :func:`~steadyvoice.audio.formats.encode`; ``sample_rate`` is then the rate encoded
    (Opus may still change it, see :mod:`steadyvoice.audio.lossy`). One encoder per response,
    used from one thread at a time. Dropping an unfinished encoder is fine (a client gone).
    """

    def __init__(self, fmt: str, sample_rate: int, *, output_rate: int | None = None) -> None:
        check_format(fmt)
        self.fmt = fmt
        self.content_type = CONTENT_TYPES[fmt]
        self.sample_rate = output_rate or sample_rate
        self._resampler = (
            Resampler(sample_rate, output_rate)
            if output_rate is not None and output_rate != sample_rate
            else None
        )
        self._encoder = _encoder(fmt, self.sample_rate)
        self._finished = False

    def feed(self, samples: FloatAudio) -> bytes:
        """Encoded bytes ready so far for this chunk (may be empty)."""
        if self._finished:
            raise ValueError("feed() after finish()")
        audio = mono_float32(samples)
        if self._resampler is not None:
            audio = self._resampler.feed(audio)
        return self._encoder.feed(audio)

    def finish(self) -> bytes:
        """The rest of the stream. The encoder cannot be used afterwards."""
        if self._finished:
            raise ValueError("finish() called twice")
        self._finished = True
        tail = b""
        if self._resampler is not None:
            tail = self._encoder.feed(self._resampler.finish())
        return tail + self._encoder.finish()


def _encoder(fmt: str, sample_rate: int) -> _Encoder:
    if fmt in CODECS:
        return LossyEncoder(fmt, sample_rate)
    if fmt == "flac":
        return _HeldFlac(sample_rate)
    return _Pcm(sample_rate, wav_header=fmt == "wav")


class _Pcm:
    """``pcm`` and streamed ``wav``: 16-bit samples as they come, WAV after its header."""

    def __init__(self, sample_rate: int, *, wav_header: bool) -> None:
        self._rate = sample_rate
        self._header = streaming_wav_header(sample_rate) if wav_header else b""

    def feed(self, samples: FloatAudio) -> bytes:
        header, self._header = self._header, b""
        return header + (pcm16(samples, self._rate) if len(samples) else b"")

    def finish(self) -> bytes:
        return self.feed(np.zeros(0, dtype=np.float32))


class _HeldFlac:
    """FLAC, kept until the end (see the module docstring)."""

    def __init__(self, sample_rate: int) -> None:
        self._rate = sample_rate
        self._chunks: list[FloatAudio] = []

    def feed(self, samples: FloatAudio) -> bytes:
        self._chunks.append(samples)
        return b""

    def finish(self) -> bytes:
        samples = np.concatenate([np.zeros(0, dtype=np.float32), *self._chunks])
        return encode_flac(samples, self._rate)
