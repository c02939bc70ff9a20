"""Convert a stored audio file to another format block by block, in constant memory.

The source is decoded a block at a time (soundfile for WAV and FLAC, PyAV for MP3, Opus and AAC,
plain reads for PCM) and each block goes through the same incremental encoders the speech
streaming path uses (:class:`~steadyvoice.audio.streaming.StreamEncoder`), straight into
``dest``. The bytes equal :func:`~steadyvoice.audio.formats.encode` of the whole decoded file,
in every format (tests/audio/test_conversion.py checks each pair):

* ``mp3``, ``opus``, ``aac``, ``pcm``: the streamed bytes already equal the one-shot file.
* ``wav``: streamed with both size fields unknown, then patched in place once the length is
  known (``dest`` must be seekable), giving :func:`encode_wav`'s header exactly.
* ``flac``: the streamed 16-bit samples are written through libsndfile's own file writer, which
  seeks back at the end to put the length and MD5 into the header, as the one-shot encoder does.

Memory stays at a few blocks whatever the length: a 25-minute job converts in a few MB.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import av
import av.error
import numpy as np
import soundfile as sf

from steadyvoice.audio.formats import check_format, encoder_tag
from steadyvoice.audio.lossy import CODECS
from steadyvoice.audio.pcm import WAV_HEADER_BYTES, decode_pcm16
from steadyvoice.audio.streaming import StreamEncoder
from steadyvoice.engines.base import FloatAudio

# Samples per block: 64 Ki samples is 4 s at 16 kHz, 256 KiB as float32.
BLOCK = 65_536
# Bump when this module's output for the same input could change (it keys the cache).
CONVERSION_VERSION = "1"


class Undecodable(ValueError):
    """The stored file cannot be decoded as its recorded format."""


def conversion_tag(source_fmt: str, target_fmt: str) -> str:
    """What decides the converted bytes besides the samples: this module's version and the
    libraries that decode the source and encode the target (for cache keys)."""
    return (
        f"conv{CONVERSION_VERSION}|{source_fmt}{encoder_tag(source_fmt)}"
        f"|{target_fmt}{encoder_tag(target_fmt)}|sndfile{sf.__libsndfile_version__}"
    )


def convert(
    source: Path, source_fmt: str, target_fmt: str, sample_rate: int, dest: BinaryIO
) -> int:
    """Write ``source`` (stored as ``source_fmt``, a job's output at ``sample_rate``) to
    ``dest`` as ``target_fmt`` at ``sample_rate``; return the samples converted.

    Raises :class:`Undecodable` if the source is not what it claims to be.
    """
    check_format(source_fmt)
    check_format(target_fmt)
    try:
        rate, blocks = _decoded(source, source_fmt, sample_rate)
        return _encode(blocks, rate, target_fmt, sample_rate, dest)
    except (av.error.FFmpegError, sf.LibsndfileError, ValueError) as exc:
        if isinstance(exc, Undecodable):
            raise
        raise Undecodable(f"{source.name} is not decodable as {source_fmt}: {exc}") from exc


def _encode(
    blocks: Iterator[FloatAudio], rate: int, fmt: str, output_rate: int, dest: BinaryIO
) -> int:
    encoder = StreamEncoder("pcm" if fmt == "flac" else fmt, rate, output_rate=output_rate)
    flac = _FlacWriter(dest, output_rate) if fmt == "flac" else None
    count = 0
    for block in blocks:
        count += len(block)
        _write(encoder.feed(block), dest, flac)
    _write(encoder.finish(), dest, flac)
    if flac is not None:
        flac.close()
    elif fmt == "wav":
        _patch_wav_sizes(dest)
    return count


def _write(data: bytes, dest: BinaryIO, flac: _FlacWriter | None) -> None:
    if flac is not None:
        flac.write(data)
    elif data:
        dest.write(data)


class _FlacWriter:
    """16-bit PCM bytes into a FLAC file through libsndfile; nothing at all for no samples
    (as :func:`~steadyvoice.audio.formats.encode_flac` gives ``b""``)."""

    def __init__(self, dest: BinaryIO, sample_rate: int) -> None:
        self._dest = dest
        self._rate = sample_rate
        self._file: sf.SoundFile | None = None

    def write(self, pcm: bytes) -> None:
        if not pcm:
            return
        if self._file is None:
            self._file = sf.SoundFile(
                self._dest, "w", self._rate, 1, subtype="PCM_16", format="FLAC"
            )
        self._file.write(np.frombuffer(pcm, dtype="<i2"))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _patch_wav_sizes(dest: BinaryIO) -> None:
    """Replace a streamed WAV header's unknown sizes (RIFF and data) with the real ones."""
    end = dest.tell()
    data_bytes = end - WAV_HEADER_BYTES
    dest.seek(4)
    dest.write(struct.pack("<I", end - 8))
    dest.seek(WAV_HEADER_BYTES - 4)
    dest.write(struct.pack("<I", data_bytes))
    dest.seek(end)


def _decoded(path: Path, fmt: str, sample_rate: int) -> tuple[int, Iterator[FloatAudio]]:
    """The source's rate and its samples in blocks of about :data:`BLOCK`, mono float32,
    exactly as :func:`~steadyvoice.audio.formats.decode` gives them in one piece."""
    if fmt == "pcm":
        return sample_rate, _pcm_blocks(path)
    if fmt in CODECS:
        container = av.open(str(path), mode="r", format=CODECS[fmt].muxer)
        if not container.streams.audio:
            container.close()
            raise Undecodable(f"{path.name} has no audio stream")
        return container.streams.audio[0].codec_context.sample_rate, _lossy_blocks(container)
    sound = sf.SoundFile(path)
    return sound.samplerate, _soundfile_blocks(sound)


def _pcm_blocks(path: Path) -> Iterator[FloatAudio]:
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(BLOCK * 2), b""):
            yield decode_pcm16(chunk)


def _soundfile_blocks(sound: sf.SoundFile) -> Iterator[FloatAudio]:
    with sound:
        for block in sound.blocks(blocksize=BLOCK, dtype="float32", always_2d=True):
            yield np.ascontiguousarray(block.mean(axis=1, dtype=np.float32))


def _lossy_blocks(container: av.container.InputContainer) -> Iterator[FloatAudio]:
    with container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        held: list[FloatAudio] = []
        size = 0
        for got in container.decode(stream):
            for frame in resampler.resample(got):
                held.append(frame.to_ndarray().reshape(-1).astype(np.float32))
                size += len(held[-1])
            if size >= BLOCK:
                yield np.concatenate(held)
                held, size = [], 0
        held += [f.to_ndarray().reshape(-1).astype(np.float32) for f in resampler.resample(None)]
        if held:
            yield np.concatenate(held)
