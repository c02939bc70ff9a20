"""Float samples to 16-bit PCM WAV bytes, deterministically."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

from steadyvoice.engines.base import FloatAudio


def encode_wav(samples: FloatAudio, sample_rate: int) -> bytes:
    """Mono PCM_16 WAV. Same samples give the same bytes (no timestamps in the header)."""
    pcm = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    buf = io.BytesIO()
    sf.write(buf, pcm, sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()
