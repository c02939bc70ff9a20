"""The engine contract every speech engine implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

DEFAULT_SEED = 42

FloatAudio = npt.NDArray[np.float32]


@dataclass(frozen=True)
class VoiceTarget:
    """A voice profile to move the output toward: its id and the analysis made at upload.

    ``analysis`` is the JSON-safe dict made by ``engines.adaptation.analyse_reference``;
    ``reference_path`` and ``transcript`` are for engines that clone from the audio itself.
    """

    voice_id: str
    analysis: dict[str, Any]
    reference_sha256: str
    analysis_version: str = ""
    reference_path: str | None = None
    transcript: str | None = None


@dataclass(frozen=True)
class SynthesisRequest:
    """What to say and how. Everything that can change the audio is in here.

    ``voice`` is the engine's own (base) voice; ``target`` a voice profile to adapt toward.
    """

    text: str
    voice: str
    seed: int = DEFAULT_SEED
    speed: float = 1.0
    target: VoiceTarget | None = None


@dataclass(frozen=True)
class Audio:
    """Mono float32 samples in [-1, 1] at ``sample_rate``."""

    samples: FloatAudio
    sample_rate: int
    sentences: int = 1
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def duration_seconds(self) -> float:
        return float(len(self.samples)) / float(self.sample_rate)


class Engine(Protocol):
    """A speech engine. ``load`` is heavy and happens once per worker process.

    ``voices`` and ``version`` must be cheap and must not load the model, so the API process can
    validate requests without running an engine. ``version(voice)`` changes whenever the audio for
    the same request could change (code, model file, runtime); ``adapted=True`` is the version of
    requests that carry a voice profile (``SynthesisRequest.target``), which must also name the
    adaptation method.
    """

    name: str

    def voices(self) -> list[str]: ...

    def default_voice(self) -> str: ...

    def version(self, voice: str, adapted: bool = False) -> str: ...

    def check_target(self, target: VoiceTarget) -> None:
        """Refuse (``voice_analysis_outdated``...) a profile this engine cannot use as stored."""
        ...

    def load(self) -> None: ...

    def synthesize(self, request: SynthesisRequest) -> Audio: ...
