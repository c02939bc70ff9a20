"""The engine contract every speech engine implements."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from steadyvoice.errors import InvalidRequest

DEFAULT_SEED = 42
ANY_LANGUAGE = "*"  # in ``Engine.voice_languages``: the voice takes text in any language

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
    ``instructions`` (how to speak: an engine-defined key such as ``cantonese`` or ``happy``) and
    ``cross_lingual`` (clone the timbre only; the text's language differs from the reference's)
    are for engines that can do them; :func:`check_request` refuses them for any other engine.
    """

    text: str
    voice: str
    seed: int = DEFAULT_SEED
    speed: float = 1.0
    target: VoiceTarget | None = None
    instructions: str | None = None
    cross_lingual: bool = False


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

    def voice_languages(self, voice: str) -> tuple[str, ...]:
        """The languages ``voice`` speaks: lower-case primary codes (ISO 639-1 such as ``en``,
        ``zh``; ``yue`` for Cantonese), or ``("*",)`` for any. Cheap, like ``voices``;
        ``unknown_voice`` for a voice the engine does not have."""
        ...

    def version(self, voice: str, adapted: bool = False) -> str: ...

    def check_target(self, target: VoiceTarget) -> None:
        """Refuse (``voice_analysis_outdated``...) a profile this engine cannot use as stored."""
        ...

    def load(self) -> None: ...

    def synthesize(self, request: SynthesisRequest) -> Audio: ...


@runtime_checkable
class StreamingEngine(Protocol):
    """An engine that can also hand out audio while it is being made. Optional.

    ``stream`` yields consecutive chunks (each an :class:`Audio` at the engine's rate) and holds
    the model while it does: close the iterator (``contextlib.closing``) if you stop early.
    Streamed audio carries no determinism promise.
    """

    def stream(self, request: SynthesisRequest) -> Iterator[Audio]: ...


@runtime_checkable
class RequestChecking(Protocol):
    """An engine that checks a request's engine-specific fields without loading its model."""

    def check_request(self, request: SynthesisRequest) -> None: ...


@runtime_checkable
class DeviceMemory(Protocol):
    """An engine that can say how much accelerator memory its process holds between jobs."""

    def device_memory_bytes(self) -> int: ...


def check_request(engine: Engine, request: SynthesisRequest) -> None:
    """Refuse what ``engine`` cannot do, cheaply (the API may call this before queueing a job)."""
    if isinstance(engine, RequestChecking):
        engine.check_request(request)
        return
    if request.instructions is not None or request.cross_lingual:
        raise InvalidRequest(
            f"the {engine.name} engine takes neither instructions nor cross_lingual",
            engine=engine.name,
        )
