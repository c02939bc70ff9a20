"""Resampling: exact lengths, no delay, and the same samples however the input is chunked."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from speech import joe_speech  # type: ignore[import-not-found]

from steadyvoice.audio.resample import Resampler, resample

Samples = npt.NDArray[np.float32]

RATE = 22_050


@pytest.fixture(scope="module")
def speech() -> Samples:
    samples, rate = joe_speech()
    assert rate == RATE
    return np.asarray(samples, dtype=np.float32)


@pytest.mark.parametrize("to_rate", [8_000, 16_000, 24_000, 48_000])
def test_lengths_are_exact(speech: Samples, to_rate: int) -> None:
    for n in (0, 1, 22, 1000, len(speech)):
        out = resample(speech[:n], RATE, to_rate)
        assert out.dtype == np.float32
        assert len(out) == round(n * to_rate / RATE)


def test_same_rate_is_untouched(speech: Samples) -> None:
    assert resample(speech, RATE, RATE) is speech


@pytest.mark.parametrize("size", [1, 7, 100, 4096])
def test_chunking_does_not_change_the_samples(speech: Samples, size: int) -> None:
    clip = speech[:30_000]
    resampler = Resampler(RATE, 24_000)
    parts = [resampler.feed(clip[i : i + size]) for i in range(0, len(clip), size)]
    np.testing.assert_array_equal(
        np.concatenate([*parts, resampler.finish()]), resample(clip, RATE, 24_000)
    )


def test_there_and_back_keeps_speech_and_timing(speech: Samples) -> None:
    back = resample(resample(speech, RATE, 48_000), 48_000, RATE)
    assert len(back) == len(speech)
    error = back.astype(np.float64) - speech
    snr = 10 * np.log10(np.sum(np.square(speech, dtype=np.float64)) / np.sum(error**2))
    assert snr > 40
