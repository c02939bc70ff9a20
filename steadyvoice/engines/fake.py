"""A deterministic, instant engine for tests and for measuring the service's own overhead."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

import numpy as np

from steadyvoice.engines.base import ANY_LANGUAGE, Audio, SynthesisRequest, VoiceTarget
from steadyvoice.engines.budget import spent
from steadyvoice.engines.interrupt import checkpoint
from steadyvoice.engines.sentences import split_sentences
from steadyvoice.errors import EngineUnavailable, UnknownVoice
from steadyvoice.settings import FakeSettings
from steadyvoice.text.split import CLAUSE_RULE, split_lead_clause

VOICES = ("alpha", "beta")
# 2: sentences also end at a CJK full stop with no space after it (Chinese and Japanese text).
_VERSION = "fake-2"


class FakeEngine:
    """Tones whose pitch depends on voice, text and seed: same request, same samples.

    ``seconds_per_char`` makes it slow on purpose, so tests can kill a worker mid-job.
    """

    name = "fake"

    def __init__(self, settings: FakeSettings) -> None:
        self._settings = settings

    def voices(self) -> list[str]:
        return list(VOICES)

    def default_voice(self) -> str:
        return VOICES[0]

    def voice_languages(self, voice: str) -> tuple[str, ...]:
        """Tones carry no language: any text is fine."""
        if voice not in VOICES:
            raise UnknownVoice(f"unknown voice {voice!r}", voice=voice)
        return (ANY_LANGUAGE,)

    def version(self, voice: str, adapted: bool = False) -> str:
        base = f"{_VERSION}+split-{CLAUSE_RULE}+sr{self._settings.sample_rate}"
        return f"{base}+target" if adapted else base

    def check_target(self, target: VoiceTarget) -> None:
        return None

    def load(self) -> None:
        if self._settings.load_seconds:
            time.sleep(self._settings.load_seconds)
        flag = self._settings.fail_load_while
        if flag is not None and flag.exists():
            raise EngineUnavailable(f"fake load fails while {flag} exists", path=str(flag))

    def synthesize(self, request: SynthesisRequest) -> Audio:
        parts = [chunk.samples for chunk in self.stream(request)]
        samples = np.concatenate(parts).astype(np.float32)
        return Audio(samples=samples, sample_rate=self._settings.sample_rate, sentences=len(parts))

    def stream(self, request: SynthesisRequest) -> Iterator[Audio]:
        """One tone per sentence, the first sentence's leading clause a tone of its own (as
        piper cuts it); ``seconds_per_char`` of work before each one."""
        if request.voice not in VOICES:
            raise UnknownVoice(f"unknown voice {request.voice!r}", voice=request.voice)
        rate = self._settings.sample_rate
        for i, sentence in enumerate(_pieces(request.text)):
            checkpoint()  # a canceled job stops here (steadyvoice.engines.interrupt)
            if self._settings.seconds_per_char:
                time.sleep(self._settings.seconds_per_char * len(sentence))
            samples = spent(self._tone(sentence, i, request, rate), rate)  # the job's audio cap
            yield Audio(samples=samples, sample_rate=rate)

    def estimate_seconds(self, request: SynthesisRequest) -> float:
        """Exactly what ``synthesize`` will make, without making it (engines.budget)."""
        rate = self._settings.sample_rate
        made = (int(_seconds(piece, request.speed) * rate) for piece in _pieces(request.text))
        return sum(made) / rate

    @staticmethod
    def _tone(sentence: str, index: int, request: SynthesisRequest, rate: int) -> np.ndarray:
        # A voice profile changes the pitch through its reference checksum: cheap, deterministic.
        who = request.voice if request.target is None else request.target.reference_sha256
        digest = hashlib.sha256(f"{who}|{index}|{sentence}".encode()).digest()
        base = 110.0 + digest[0] * 2.0
        t = np.arange(int(_seconds(sentence, request.speed) * rate)) / rate
        rng = np.random.default_rng([request.seed, index])
        noise = rng.standard_normal(t.shape[0]) * 0.01
        return np.asarray(0.3 * np.sin(2 * np.pi * base * t) + noise, dtype=np.float32)


def _pieces(text: str) -> list[str]:
    """The sentences spoken as tones, the first one's leading clause apart."""
    first, *others = split_sentences(text)
    return [*split_lead_clause(first), *others]


def _seconds(piece: str, speed: float) -> float:
    return max(0.2, 0.06 * len(piece) / speed)
