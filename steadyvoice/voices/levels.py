"""Level, voicing and clipping measurements on mono float audio (numpy only, deterministic).

Everything works on 20 ms frames. Levels are RMS relative to full scale: a full-scale square wave
is 0 dBFS (a full-scale sine is -3 dBFS). Powers are floored at -120 dB so every measurement is a
finite number that JSON can carry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

FRAME_SECONDS = 0.02
FLOOR_DB = -120.0
_FLOOR_POWER = 10.0 ** (FLOOR_DB / 10.0)
# Voicing looks for a pitch period in the band where voiced speech carries its harmonics; the
# band limit also keeps broadband noise (hiss) from diluting the periodicity of a voiced frame.
F0_MIN_HZ, F0_MAX_HZ = 60.0, 450.0
BAND_LOW_HZ, BAND_HIGH_HZ = 60.0, 1_000.0
VOICED_CORRELATION = 0.7
# Neighbouring voiced frames differ in period by at most this fraction.
PITCH_STEADY = 0.15
# Below this band level a frame is treated as silence however periodic it looks (dither, LSB hum).
VOICED_MIN_DBFS = -100.0
# Frames are active when above the noise floor by this much, and not further below the loud
# frames than the dynamic range speech needs.
ACTIVE_ABOVE_NOISE_DB = 6.0
ACTIVE_BELOW_LOUD_DB = 35.0
NOISE_PERCENTILE = 10.0
LOUD_PERCENTILE = 95.0
# Speech rises and falls with syllables; a steady hum or a held tone does not.
MIN_MODULATION_DB = 6.0
MIN_VOICED_SECONDS = 0.3
# Full-scale samples: int16 full scale is 32767/32768; lossy decoders overshoot above 1.0.
FULL_SCALE = 0.999
# Flat tops left by clipping before a gain change: runs of 3+ identical samples near the peak.
FLAT_NEAR_PEAK = 0.98


def power_db(power: float | FloatArray) -> FloatArray:
    """Power (mean square) in dB relative to full scale, floored at ``FLOOR_DB``."""
    return np.asarray(10.0 * np.log10(np.maximum(power, _FLOOR_POWER)), dtype=np.float64)


def to_db(power: float) -> float:
    """Scalar version of :func:`power_db`."""
    return float(power_db(power))


def ratio_db(numerator: float, denominator: float) -> float:
    """``10 log10(numerator / denominator)`` kept within +/-120 dB; a zero numerator is -120.

    Silent sides of a stereo file therefore count as identical channels, and a side signal with
    a silent mid (one channel the inverse of the other) as +120 dB.
    """
    if numerator <= 0.0:
        return FLOOR_DB
    if denominator <= 0.0:
        return -FLOOR_DB
    return float(np.clip(10.0 * np.log10(numerator / denominator), FLOOR_DB, -FLOOR_DB))


@dataclass(frozen=True)
class Frames:
    """Per-frame measurements; frame ``k`` covers samples ``[k*length, (k+1)*length)``."""

    length: int
    power_db: FloatArray
    band_db: FloatArray
    voiced: BoolArray


def analyse_frames(samples: npt.NDArray[np.float32], sample_rate: int) -> Frames:
    """Frame powers (full band and speech band) and a voicing decision per ~20 ms frame."""
    step = _decimation(sample_rate)
    length = step * max(1, round(FRAME_SECONDS * sample_rate / step))
    count = len(samples) // length
    if count == 0:
        empty = np.zeros(0)
        return Frames(length, empty, empty, np.zeros(0, dtype=np.bool_))
    x = samples[: count * length].astype(np.float64)
    power = np.mean(np.square(x).reshape(count, length), axis=1)
    band = _band_signal(x, sample_rate, step)
    band_power = np.mean(np.square(band).reshape(count, length // step), axis=1)
    voiced = _voicing(band, sample_rate / step, length // step) & (
        band_power > 10.0 ** (VOICED_MIN_DBFS / 10.0)
    )
    return Frames(length, power_db(power), power_db(band_power), voiced)


def _decimation(sample_rate: int) -> int:
    """Keep every n-th sample of the band signal: the speech band fits below 2 kHz Nyquist."""
    return max(1, sample_rate // int(4 * BAND_HIGH_HZ))


def _band_signal(x: FloatArray, sample_rate: int, step: int) -> FloatArray:
    """``x`` band-passed to the speech band and decimated by ``step``, in one FFT round trip.

    The zero padding makes the transform length a power of two times ``step`` (fast, and the
    short inverse transform then lands exactly on every ``step``-th input sample).
    """
    short = 1 << int(np.ceil(np.log2(len(x) // step + 2 * sample_rate // (step * 10) + 1)))
    size = short * step
    spectrum = np.fft.rfft(x, n=size)
    freqs = np.fft.rfftfreq(size, 1.0 / sample_rate)[: short // 2 + 1]
    kept = spectrum[: short // 2 + 1] * ((freqs >= BAND_LOW_HZ) & (freqs <= BAND_HIGH_HZ))
    band = np.fft.irfft(kept, n=short) / step
    return np.asarray(band[: len(x) // step], dtype=np.float64)


def _voicing(band: FloatArray, rate: float, length: int) -> BoolArray:
    """Voicing from the normalised autocorrelation of a 40 ms band-passed window per frame.

    A frame is a candidate when the autocorrelation has an interior peak (not the decaying edge
    that low-passed noise shows) above ``VOICED_CORRELATION`` at a lag of one pitch period. It is
    voiced when a neighbouring candidate has nearly the same period: pitch moves smoothly in
    speech, while the chance peaks of noise jump around.
    """
    count = len(band) // length
    window = 2 * length
    lag_min = max(1, int(rate / F0_MAX_HZ))
    lag_max = min(window - 2, int(np.ceil(rate / F0_MIN_HZ)))
    nfft = 1 << int(np.ceil(np.log2(window + lag_max + 1)))
    padded = np.concatenate([band, np.zeros(length)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, window)[::length][:count]
    acf = np.fft.irfft(np.square(np.abs(np.fft.rfft(windows, n=nfft, axis=1))), n=nfft, axis=1)
    energy = np.maximum(acf[:, 0], _FLOOR_POWER)
    # Unbiased normalisation: a lag of L has only (window - L) overlapping products.
    lags = np.arange(lag_min - 1, lag_max + 2)
    norm = acf[:, lag_min - 1 : lag_max + 2] * (window / (window - lags)) / energy[:, None]
    rows = np.arange(count)
    peak = np.argmax(norm[:, 1:-1], axis=1) + 1
    value = norm[rows, peak]
    candidate = (
        (value >= VOICED_CORRELATION)
        & (norm[rows, peak - 1] < value)
        & (norm[rows, peak + 1] <= value)
    )
    period = (peak + lag_min - 1).astype(np.float64)
    steady = (
        candidate[1:]
        & candidate[:-1]
        & (np.abs(period[1:] - period[:-1]) <= PITCH_STEADY * period[1:])
    )
    voiced = np.zeros(count, dtype=np.bool_)
    voiced[1:] |= steady
    voiced[:-1] |= steady
    return voiced


@dataclass(frozen=True)
class Activity:
    """Which frames carry sound above the noise, and the levels that decided it."""

    active: BoolArray
    noise_db: float
    loud_db: float
    threshold_db: float


def activity(frames: Frames) -> Activity:
    """Active frames: above the noise floor estimate and within speech range of the loud frames.

    The noise floor is the mean power of the quietest ``NOISE_PERCENTILE`` % of frames (pauses
    between words and the lead-in/out); the loud level is the ``LOUD_PERCENTILE`` percentile.
    """
    db = frames.power_db
    if db.size == 0:
        return Activity(np.zeros(0, dtype=np.bool_), FLOOR_DB, FLOOR_DB, 0.0)
    power = 10.0 ** (db / 10.0)
    quiet = power <= np.percentile(power, NOISE_PERCENTILE)
    noise_db = to_db(float(np.mean(power[quiet])))
    loud_db = float(np.percentile(db, LOUD_PERCENTILE))
    threshold = max(noise_db + ACTIVE_ABOVE_NOISE_DB, loud_db - ACTIVE_BELOW_LOUD_DB, FLOOR_DB)
    return Activity(db > threshold, noise_db, loud_db, threshold)


def speech_span(active: BoolArray) -> tuple[int, int]:
    """First active frame and one past the last (``(0, 0)`` when none is active)."""
    where = np.flatnonzero(active)
    if where.size == 0:
        return 0, 0
    return int(where[0]), int(where[-1]) + 1


def modulation_db(band_db: FloatArray) -> float:
    """Spread (90th minus 10th percentile) of speech-band frame levels; near 0 for a steady hum."""
    if band_db.size == 0:
        return 0.0
    return float(np.percentile(band_db, 90.0) - np.percentile(band_db, 10.0))


def mean_level_db(frame_db: FloatArray) -> float:
    """Level of the mean power of the given frames (energy average, not a dB average)."""
    if frame_db.size == 0:
        return FLOOR_DB
    return to_db(float(np.mean(10.0 ** (frame_db / 10.0))))


def snr_db(speech_db: float, noise_db: float) -> float:
    """Signal-to-noise ratio with the noise power taken out of the active speech power.

    Active frames hold speech plus noise; subtracting the noise floor keeps the estimate honest
    at low SNR (at a true 5 dB, speech-plus-noise over noise alone would read 6.2 dB).
    """
    speech = 10.0 ** (speech_db / 10.0) - 10.0 ** (noise_db / 10.0)
    return to_db(max(speech, 0.0)) - noise_db


def clipped_fraction(samples: npt.NDArray[np.float32]) -> float:
    """Fraction of samples at full scale or inside a flat run (3+ identical) at the peak.

    The second test catches audio that clipped in integer form and was turned down afterwards:
    its flat tops sit below full scale but are runs of exactly equal values at the file's peak.
    """
    if samples.size == 0:
        return 0.0
    mag = np.abs(samples)
    clipped = mag >= FULL_SCALE
    peak = float(np.max(mag))
    if samples.size >= 3 and peak > 0.0:
        equal = samples[1:] == samples[:-1]
        run = equal[:-1] & equal[1:]  # run[i]: samples i, i+1 and i+2 are identical
        in_run = np.zeros(samples.size, dtype=np.bool_)
        for offset in range(3):
            in_run[offset : offset + run.size] |= run
        clipped |= in_run & (mag >= FLAT_NEAR_PEAK * peak)
    return float(np.count_nonzero(clipped)) / float(samples.size)


@dataclass(frozen=True)
class Speech:
    """Where the speech is (sample indices, ``end`` exclusive) and how it measures."""

    start: int
    end: int
    voiced_seconds: float
    modulation_db: float
    speech_dbfs: float
    noise_dbfs: float
    snr_db: float


def find_speech(samples: npt.NDArray[np.float32], sample_rate: int) -> Speech:
    """Locate the active span and measure voicing, modulation, level and SNR of the speech.

    The span runs from the first to the last active frame (leading and trailing silence
    trimmed). Voiced seconds count voiced active frames; the speech level is the energy mean of
    the active frames; the SNR compares it, noise removed, with the noise floor.
    """
    frames = analyse_frames(samples, sample_rate)
    act = activity(frames)
    first, last = speech_span(act.active)
    voiced = np.count_nonzero(frames.voiced[first:last] & act.active[first:last])
    level = mean_level_db(frames.power_db[act.active])
    return Speech(
        start=first * frames.length,
        end=min(last * frames.length, len(samples)),
        voiced_seconds=float(voiced * frames.length / sample_rate),
        modulation_db=modulation_db(frames.band_db[first:last]),
        speech_dbfs=level,
        noise_dbfs=act.noise_db,
        snr_db=snr_db(level, act.noise_db),
    )
