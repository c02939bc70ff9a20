"""16-bit PCM: the raw ``pcm`` format, and the header a streamed WAV starts with.

The samples are cut out of :func:`encode_wav`'s output, so ``pcm``, stored WAV and streamed WAV
quantize exactly alike (libsndfile's float to int16 rule), and a chunk's PCM does not depend on
where the chunk boundaries fall.
"""

from __future__ import annotations

import struct

import numpy as np

from steadyvoice.audio.wav import encode_wav
from steadyvoice.engines.base import FloatAudio

# encode_wav writes the canonical 44-byte header: RIFF, fmt (16 bytes), then data.
WAV_HEADER_BYTES = 44
UNKNOWN_SIZE = 0xFFFFFFFF


def pcm16(samples: FloatAudio, sample_rate: int) -> bytes:
    """Little-endian signed 16-bit mono samples, no header: ``encode_wav`` less its header."""
    return encode_wav(samples, sample_rate)[WAV_HEADER_BYTES:]


def streaming_wav_header(sample_rate: int) -> bytes:
    """The header of a WAV whose length is not known yet: both sizes 0xFFFFFFFF.

    It is ``encode_wav``'s header with the RIFF and data sizes set to the maximum, which is what
    streaming servers send and what players read as "until the connection ends".
    """
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        UNKNOWN_SIZE,
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        1,  # mono
        sample_rate,
        sample_rate * 2,
        2,
        16,
        b"data",
        UNKNOWN_SIZE,
    )


def decode_pcm16(data: bytes) -> FloatAudio:
    """Raw s16le to float32 in [-1, 1) (x / 32768, as libsndfile reads it)."""
    if len(data) % 2:
        raise ValueError(f"pcm data has an odd length ({len(data)} bytes)")
    ints = np.frombuffer(data, dtype="<i2")
    return (ints.astype(np.float32) / np.float32(32768)).astype(np.float32)
