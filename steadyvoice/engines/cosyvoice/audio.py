"""Prompt audio in the form upstream CosyVoice needs, and checks on what it returns.

Upstream takes the prompt as a *path* (never a tensor since commit 622a3a1), reads it three times
with torchaudio's soundfile backend, and asserts at least 16 kHz and at most 30 s. The adapter
hands it a mono float WAV written from the stored reference, so any format the voice checks
accepted (FLAC, OGG, MP3, stereo that down-mixes cleanly) reaches upstream in one it reads.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from steadyvoice.engines.base import FloatAudio, VoiceTarget
from steadyvoice.errors import (
    EngineOutputInvalid,
    ReferenceSampleRateTooLow,
    ReferenceTooLong,
    ReferenceUnreadable,
)

MIN_PROMPT_RATE = 16_000
MAX_PROMPT_SECONDS = 30.0  # upstream's speech tokenizer asserts this
SILENCE_PEAK = 1e-4


def check_reference(target: VoiceTarget) -> None:
    """Refuse a profile whose recording upstream would assert on (reads the header only)."""
    path = _reference_path(target)
    try:
        info = sf.info(str(path))
    except (OSError, RuntimeError) as exc:  # soundfile's LibsndfileError is a RuntimeError
        raise ReferenceUnreadable(
            f"voice {target.voice_id}: reference unreadable ({exc})", voice=target.voice_id
        ) from exc
    if info.samplerate < MIN_PROMPT_RATE:
        raise ReferenceSampleRateTooLow(
            f"voice {target.voice_id}: cosyvoice needs a reference of at least "
            f"{MIN_PROMPT_RATE} Hz",
            voice=target.voice_id,
            sample_rate=info.samplerate,
            limit=MIN_PROMPT_RATE,
        )
    if info.duration > MAX_PROMPT_SECONDS:
        raise ReferenceTooLong(
            f"voice {target.voice_id}: cosyvoice takes at most {MAX_PROMPT_SECONDS:.0f} s of "
            "reference audio; upload a shorter recording (with its transcript)",
            voice=target.voice_id,
            seconds=round(info.duration, 2),
            limit=MAX_PROMPT_SECONDS,
        )


@contextlib.contextmanager
def prompt_wav(target: VoiceTarget, folder: Path) -> Iterator[str]:
    """A temporary mono WAV of the profile's reference, removed afterwards."""
    check_reference(target)
    samples, rate = sf.read(str(_reference_path(target)), dtype="float32", always_2d=True)
    mono = samples.mean(axis=1, dtype=np.float32)
    fd, name = tempfile.mkstemp(dir=folder, prefix="prompt-", suffix=".wav")
    os.close(fd)
    try:
        sf.write(name, mono, rate, format="WAV", subtype="FLOAT")
        yield name
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


def checked_output(samples: FloatAudio, text: str) -> FloatAudio:
    """Refuse NaN, infinities, and silence for text that has something to say."""
    if not np.all(np.isfinite(samples)):
        raise EngineOutputInvalid(
            "cosyvoice returned non-finite samples (NaN/inf; fp16 or a TensorRT plan for "
            "another TensorRT version are the usual causes)"
        )
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak < SILENCE_PEAK and text.strip():
        raise EngineOutputInvalid("cosyvoice returned silence", peak=peak)
    clipped: FloatAudio = np.clip(samples, -1.0, 1.0).astype(np.float32, copy=False)
    return clipped


def synthetic_prompt(folder: Path, rate: int = 24_000, seconds: float = 3.0) -> str:
    """A voiced-sounding tone for the warm-up call when no real prompt is at hand."""
    t = np.arange(int(rate * seconds), dtype=np.float64) / rate
    f0 = 120.0 + 20.0 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    wave = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t) ** 2
    samples = (0.2 * wave * envelope).astype(np.float32)
    path = folder / "warmup-prompt.wav"
    sf.write(str(path), samples, rate, format="WAV", subtype="FLOAT")
    return str(path)


def _reference_path(target: VoiceTarget) -> Path:
    if target.reference_path is None:
        raise ReferenceUnreadable(
            f"voice {target.voice_id} has no stored reference recording", voice=target.voice_id
        )
    return Path(target.reference_path)
