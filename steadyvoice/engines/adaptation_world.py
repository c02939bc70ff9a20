"""WORLD vocoder plumbing for :mod:`steadyvoice.engines.adaptation`: analysis, warping, bands.

Everything here is plain numpy over the output of ``pyworld``; nothing draws random numbers
except WORLD itself, which reseeds its own generator at the start of every ``Synthesis``,
``CheapTrick`` and ``D4C`` call (and pyworld holds the GIL while they run), so the same input
gives the same bytes in any process on the same machine.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import threading
from dataclasses import dataclass
from importlib.metadata import version as dist_version
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from steadyvoice.errors import EngineUnavailable

F64 = npt.NDArray[np.float64]

# 5 ms frames resynthesise clearly better than 10 ms (fewer smeared transients, a few points of
# recogniser word error rate), and D4C at every second frame keeps the cost within budget.
FRAME_PERIOD_MS = 5.0
APERIODICITY_STRIDE = 2
# dio's search range (deep male to child voices) and its internal decimation (speed 2 is 4x
# faster than 1 with the same voicing on speech sampled >= 16 kHz).
F0_FLOOR_HZ = 70.0
F0_CEIL_HZ = 500.0
DIO_SPEED = 2
# The fixed, rate-independent band grid the long-term spectrum is stored on (mel-spaced edges).
# 7.6 kHz keeps the top band below the Nyquist frequency of a 16 kHz reference.
BAND_COUNT = 40
BAND_LOW_HZ = 60.0
BAND_HIGH_HZ = 7600.0
_EXTENSION = "pyworld.pyworld"
_LOAD_LOCK = threading.Lock()


@dataclass(frozen=True)
class WorldFeatures:
    """One utterance in WORLD terms, one row per ``FRAME_PERIOD_MS`` frame."""

    f0: F64
    envelope: F64  # power spectral envelope, frames x (fft_size // 2 + 1)
    aperiodicity: F64
    sample_rate: int

    @property
    def voiced(self) -> npt.NDArray[np.bool_]:
        return self.f0 > 0.0


def pyworld_version() -> str:
    # The distribution version only: pyworld is built from source and its binary embeds build
    # paths, so hashing it would give every host its own engine version. The golden-output
    # test in tests/engines/test_adaptation.py catches a build that computes differently.
    return dist_version("pyworld")


def load_pyworld() -> ModuleType:
    """Return pyworld's compiled extension without running the package ``__init__``.

    pyworld 0.3.5's ``__init__`` imports ``pkg_resources`` only to read its own version; that
    module is gone from setuptools >= 81 and emits a deprecation warning before that. The
    extension itself needs neither, so it is loaded directly (once; later imports reuse it).
    """
    with _LOAD_LOCK:
        loaded = sys.modules.get(_EXTENSION)
        return loaded if loaded is not None else _load_extension()


def _load_extension() -> ModuleType:
    spec = importlib.util.find_spec("pyworld")
    locations = list(spec.submodule_search_locations or []) if spec else []
    candidates = [p for d in locations for p in sorted(Path(d).glob("pyworld.*.so"))]
    if not candidates:
        raise EngineUnavailable("pyworld is not installed (needed for voice adaptation)")
    loader = importlib.machinery.ExtensionFileLoader(_EXTENSION, str(candidates[0]))
    ext_spec = importlib.util.spec_from_file_location(_EXTENSION, candidates[0], loader=loader)
    if ext_spec is None:
        raise EngineUnavailable(f"cannot load pyworld from {candidates[0]}")
    module = importlib.util.module_from_spec(ext_spec)
    loader.exec_module(module)
    sys.modules[_EXTENSION] = module
    return module


def analyse(samples: npt.NDArray[Any], sample_rate: int, *, aperiodicity: bool) -> WorldFeatures:
    """F0 (dio + stonemask), CheapTrick envelope and, if asked, D4C aperiodicity."""
    pw = load_pyworld()
    x = np.ascontiguousarray(samples, dtype=np.float64)
    f0, times = pw.dio(
        x,
        sample_rate,
        f0_floor=F0_FLOOR_HZ,
        f0_ceil=F0_CEIL_HZ,
        frame_period=FRAME_PERIOD_MS,
        speed=DIO_SPEED,
    )
    f0 = pw.stonemask(x, f0, times, sample_rate)
    envelope = pw.cheaptrick(x, f0, times, sample_rate)
    ap = _coarse_aperiodicity(pw, x, f0, times, sample_rate) if aperiodicity else np.zeros((0, 0))
    return WorldFeatures(np.asarray(f0), np.asarray(envelope), ap, sample_rate)


def _coarse_aperiodicity(pw: ModuleType, x: F64, f0: F64, times: F64, sample_rate: int) -> F64:
    """D4C on every ``APERIODICITY_STRIDE``-th frame, linearly interpolated in between.

    Aperiodicity changes slowly and is only used on voiced frames, so this halves D4C's cost
    (the largest analysis step) without an audible or measurable difference.
    """
    step = APERIODICITY_STRIDE
    coarse = np.asarray(
        pw.d4c(
            x, np.ascontiguousarray(f0[::step]), np.ascontiguousarray(times[::step]), sample_rate
        )
    )
    positions = np.arange(f0.size, dtype=np.float64) / step
    low = np.minimum(np.floor(positions).astype(np.intp), coarse.shape[0] - 1)
    high = np.minimum(low + 1, coarse.shape[0] - 1)
    frac = (positions - low)[:, None]
    fine: F64 = coarse[low] * (1.0 - frac) + coarse[high] * frac
    return fine


def synthesize(f0: F64, envelope: F64, aperiodicity: F64, sample_rate: int) -> F64:
    pw = load_pyworld()
    y = pw.synthesize(
        np.ascontiguousarray(f0),
        np.ascontiguousarray(envelope),
        np.ascontiguousarray(aperiodicity),
        sample_rate,
        FRAME_PERIOD_MS,
    )
    return np.asarray(y, dtype=np.float64)


def band_centres_hz() -> F64:
    """Centre frequencies of the stored bands (mel-spaced)."""
    edges = _band_edges_hz()
    return np.sqrt(edges[:-1] * edges[1:])


def _band_edges_hz() -> F64:
    def mel(hz: float) -> float:
        return 2595.0 * float(np.log10(1.0 + hz / 700.0))

    mels = np.linspace(mel(BAND_LOW_HZ), mel(BAND_HIGH_HZ), BAND_COUNT + 1)
    return 700.0 * (np.power(10.0, mels / 2595.0) - 1.0)


def band_levels_db(envelope_db: F64, sample_rate: int) -> F64:
    """Average a dB spectrum (last axis: FFT bins up to Nyquist) into the fixed bands.

    Each band is a plain mean of the bins inside it (at least the nearest bin), so the result
    does not depend on the analysis rate or FFT size beyond the envelope's own smoothness.
    """
    bins = envelope_db.shape[-1]
    freqs = np.linspace(0.0, sample_rate / 2.0, bins)
    edges = _band_edges_hz()
    centres = band_centres_hz()
    levels = np.empty((*envelope_db.shape[:-1], BAND_COUNT))
    for band in range(BAND_COUNT):
        inside = (freqs >= edges[band]) & (freqs < edges[band + 1])
        if not inside.any():  # a band narrower than one bin (low rates): take the nearest bin
            inside = np.arange(bins) == int(np.argmin(np.abs(freqs - centres[band])))
        levels[..., band] = np.mean(envelope_db[..., inside], axis=-1)
    return levels


def bands_to_bins(band_db: F64, bins: int, sample_rate: int) -> F64:
    """Spread a per-band curve over FFT bins (linear in log-frequency, flat past the ends)."""
    freqs = np.linspace(0.0, sample_rate / 2.0, bins)
    log_f = np.log(np.maximum(freqs, 1.0))
    return np.interp(log_f, np.log(band_centres_hz()), band_db)


def warp_envelope(envelope: F64, alpha: float) -> F64:
    """Move every formant by ``alpha``: the new envelope at f is the old one at f / alpha.

    Interpolation is linear between bins; beyond the top bin the last bin is held.
    """
    bins = envelope.shape[1]
    source = np.minimum(np.arange(bins, dtype=np.float64) / alpha, bins - 1.0)
    low = np.floor(source).astype(np.intp)
    high = np.minimum(low + 1, bins - 1)
    frac = source - low
    warped: F64 = envelope[:, low] * (1.0 - frac) + envelope[:, high] * frac
    return warped
