"""Sample-rate conversion with libsoxr, in one piece or as audio arrives.

soxr's streaming resampler gives the same samples however the input is cut into chunks (the
tests check it), so a streamed encoding can match a one-shot one byte for byte. It is used for
Opus (which takes 8/12/16/24/48 kHz only) and for an ``output_rate`` a client asks for, such as
OpenAI's 24 kHz ``pcm``.
"""

from __future__ import annotations

import numpy as np
import soxr

from steadyvoice.engines.base import FloatAudio

QUALITY = "HQ"


class Resampler:
    """Streaming ``from_rate`` to ``to_rate`` conversion of mono float32 audio."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self._stream = soxr.ResampleStream(from_rate, to_rate, 1, dtype="float32", quality=QUALITY)

    def feed(self, samples: FloatAudio) -> FloatAudio:
        return _mono(self._stream.resample_chunk(samples))

    def finish(self) -> FloatAudio:
        return _mono(self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True))


def resample(samples: FloatAudio, from_rate: int, to_rate: int) -> FloatAudio:
    """``samples`` at ``to_rate``: round(len * to_rate / from_rate) samples, no added delay."""
    if from_rate == to_rate:
        return samples
    resampler = Resampler(from_rate, to_rate)
    return np.concatenate([resampler.feed(samples), resampler.finish()])


def _mono(chunk: object) -> FloatAudio:
    return np.asarray(chunk, dtype=np.float32).reshape(-1)
