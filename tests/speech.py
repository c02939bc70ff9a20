"""Real speech for tests from the bundled Piper voice (``from speech import ...``)."""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import soundfile as sf

from steadyvoice.engines.base import SynthesisRequest
from steadyvoice.engines.piper import PiperEngine
from steadyvoice.settings import PiperSettings

Samples = npt.NDArray[np.float32]

REFERENCE_TEXT = (
    "Good morning. This recording is my reference voice, and I agree to its use. "
    "The weather was bright and the train was on time."
)


@lru_cache(maxsize=1)
def _engine() -> PiperEngine:
    engine = PiperEngine(PiperSettings())
    engine.load()
    return engine


@lru_cache(maxsize=16)
def joe_speech(text: str = REFERENCE_TEXT, seed: int = 42) -> tuple[Samples, int]:
    """Piper's ``joe`` saying ``text``, at 0.5 peak (22 050 Hz)."""
    audio = _engine().synthesize(SynthesisRequest(text=text, voice="joe", seed=seed))
    return (audio.samples * 0.5).astype(np.float32), audio.sample_rate


def encode(samples: Samples, rate: int, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    """Audio file bytes in ``fmt`` (WAV, FLAC, OGG, MP3, AIFF)."""
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def reference_wav(text: str = REFERENCE_TEXT) -> bytes:
    samples, rate = joe_speech(text)
    return encode(samples, rate)


@lru_cache(maxsize=4)
def other_speaker(text: str = REFERENCE_TEXT) -> tuple[Samples, int]:
    """A speaker clearly unlike ``joe``: his voice with pitch x1.7 and formants x1.18 (WORLD).

    Tests need a second speaker that the project's own install provides; this is it. The
    benchmark (bench/quality.py) uses human recordings instead.
    """
    from steadyvoice.engines.adaptation_world import load_pyworld

    pyworld = load_pyworld()
    samples, rate = joe_speech(text, seed=3)
    x = samples.astype(np.float64)
    f0, t = pyworld.dio(x, rate)
    f0 = pyworld.stonemask(x, f0, t, rate)
    sp = pyworld.cheaptrick(x, f0, t, rate)
    ap = pyworld.d4c(x, f0, t, rate)
    bins = sp.shape[1]
    src = np.minimum(np.arange(bins) / 1.18, bins - 1)
    warped = np.stack([np.interp(src, np.arange(bins), frame) for frame in sp])
    y = pyworld.synthesize(f0 * 1.7, warped, ap, rate)
    y = 0.5 * y / np.max(np.abs(y))
    return y.astype(np.float32), rate
