"""MP3, Opus and AAC through PyAV, whose wheel carries its own FFmpeg, LAME and libopus.

Every output is written as a stream to a sink that cannot seek, both for a one-shot file and
for streaming, so the two are the same bytes: the concatenated output of ``feed`` calls and
``finish`` equals a one-shot encoding of the concatenated samples, however they were cut. Same
input, same bytes: FFmpeg's ``bitexact`` flags keep version strings out, Ogg's stream serial is 0,
and there is no ID3 tag or Xing/LAME frame (a Xing frame needs a seek back to the start).

What FFmpeg's decoders give back (measured at 22.05 kHz, see tests/audio/test_formats.py):

* ``mp3`` (MPEG audio, LAME CBR): 1105 samples of silence first (LAME's 576 plus the decoder's
  529; without a LAME tag nothing tells the decoder to drop them), and after the audio LAME's
  padding to a whole frame (576 samples per frame below 32 kHz, 1152 from 32 kHz up).
* ``aac`` (AAC-LC in ADTS, FFmpeg's own encoder): 1024 samples of priming first, the end padded
  to a whole 1024-sample frame. ADTS has nowhere to say how many to drop.
* ``opus`` (libopus in Ogg): exact length, since Ogg carries the pre-skip and the end position.
  Opus takes 8, 12, 16, 24 or 48 kHz: other rates are first resampled (soxr) to the smallest of
  these at or above the source rate (22.05 kHz goes to 24 kHz). Decoders hand out 48 kHz.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from fractions import Fraction

import av
import av.error
import numpy as np
from av.audio.stream import AudioStream
from av.container import OutputContainer

from steadyvoice.audio.resample import Resampler
from steadyvoice.engines.base import FloatAudio

# AAC-LC carries at most 6144 bits per channel per 1024-sample frame.
AAC_MAX_BITS_PER_SAMPLE = 6
# Ogg pages close after this much audio. The muxer keeps the last whole page back (to flag the
# end of the stream on it), so a stream holds back up to two pages: about 210 ms with 100 ms
# pages, 410 ms with 200 ms and 2 s with FFmpeg's default 1 s. 100 ms pages cost about 6 % more
# bytes than 1 s ones for 32 kbit/s speech.
OGG_PAGE_MICROSECONDS = 100_000


@dataclass(frozen=True)
class Codec:
    """How one lossy format is made: FFmpeg muxer, encoder, sample format and bit rate."""

    muxer: str
    encoder: str
    sample_format: str
    bit_rate: int
    muxer_options: dict[str, str] = field(default_factory=dict)


CODECS = {
    "mp3": Codec("mp3", "libmp3lame", "fltp", 64_000, {"id3v2_version": "0", "write_xing": "0"}),
    "opus": Codec("ogg", "libopus", "flt", 32_000, {"page_duration": str(OGG_PAGE_MICROSECONDS)}),
    "aac": Codec("adts", "aac", "fltp", 64_000),
}


def codec_rate(encoder: str, sample_rate: int) -> int:
    """The rate ``encoder`` runs at for ``sample_rate`` input: the same if it takes it, else the
    smallest rate it takes above it, else its highest."""
    rates = sorted(av.Codec(encoder, "w").audio_rates or [sample_rate])
    if sample_rate in rates:
        return sample_rate
    return next((rate for rate in rates if rate > sample_rate), rates[-1])


class _Sink:
    """A write-only file for PyAV: takes what the muxer writes until someone collects it."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


class LossyEncoder:
    """Encode mono float32 audio to ``fmt`` (``mp3``, ``opus`` or ``aac``) as it arrives.

    The container is opened on the first samples, so an encoder that never gets any writes
    nothing at all (no Ogg header pages either).
    """

    def __init__(self, fmt: str, sample_rate: int) -> None:
        self._codec = CODECS[fmt]
        self._rate = codec_rate(self._codec.encoder, sample_rate)
        self._resampler = Resampler(sample_rate, self._rate) if self._rate != sample_rate else None
        self._sink = _Sink()
        self._output: tuple[OutputContainer, AudioStream] | None = None
        self._pts = 0

    def feed(self, samples: FloatAudio) -> bytes:
        if self._resampler is not None:
            samples = self._resampler.feed(samples)
        self._encode(samples)
        return self._sink.take()

    def finish(self) -> bytes:
        if self._resampler is not None:
            self._encode(self._resampler.finish())
        if self._output is not None:
            container, stream = self._output
            container.mux(stream.encode(None))
            container.close()
        return self._sink.take()

    def _encode(self, samples: FloatAudio) -> None:
        if len(samples) == 0:
            return
        container, stream = self._output or self._open()
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = self._rate
        frame.time_base = Fraction(1, self._rate)
        frame.pts = self._pts
        self._pts += len(samples)
        container.mux(stream.encode(frame))

    def _open(self) -> tuple[OutputContainer, AudioStream]:
        codec = self._codec
        container = av.open(
            self._sink,
            mode="w",
            format=codec.muxer,
            container_options={
                "fflags": "+bitexact",
                "flush_packets": "1",
                **codec.muxer_options,
            },
        )
        stream = container.add_stream(
            codec.encoder,
            rate=self._rate,
            options={"flags": "+bitexact", "b": str(self._bit_rate())},
        )
        if not isinstance(stream, AudioStream):
            raise TypeError(f"{codec.encoder} is not an audio encoder")
        stream.layout = "mono"
        stream.codec_context.format = codec.sample_format
        container.start_encoding()
        self._output = container, stream
        return self._output

    def _bit_rate(self) -> int:
        if self._codec.encoder == "aac":
            return min(self._codec.bit_rate, AAC_MAX_BITS_PER_SAMPLE * self._rate)
        return self._codec.bit_rate


def decode_lossy(data: bytes, fmt: str) -> tuple[FloatAudio, int]:
    """Mono float32 samples and their rate, from ``mp3``, ``opus`` or ``aac`` bytes.

    Several channels are downmixed by FFmpeg's resampler. Raises ValueError for data FFmpeg
    cannot read as that format, empty data included.
    """
    try:
        return _decode(data, CODECS[fmt].muxer)
    except av.error.FFmpegError as exc:
        raise ValueError(f"not decodable as {fmt}: {exc}") from exc


def _decode(data: bytes, muxer: str) -> tuple[FloatAudio, int]:
    with av.open(io.BytesIO(data), mode="r", format=muxer) as container:
        if not container.streams.audio:
            raise ValueError("no audio stream")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        frames = [f for got in container.decode(stream) for f in resampler.resample(got)]
        frames += resampler.resample(None)
    chunks = [np.zeros(0, dtype=np.float32), *(f.to_ndarray().reshape(-1) for f in frames)]
    return np.concatenate(chunks).astype(np.float32), rate
