"""The ``cosyvoice`` engine: CosyVoice2 / Fun-CosyVoice3 run the way a production model should be.

What the adapter adds to upstream (see docs/engines/cosyvoice.md and
/shared/reference/cosyvoice-upstream.md for why):

- one synthesis at a time per model instance (upstream has no lock around its compute, and all
  requests share one RNG), with the seed set immediately before every upstream call;
- CosyVoice3's ``<|endofprompt|>`` prompt formatting, and splitting when upstream will not split;
- the streaming chunk size (``token_hop_len``) reset before every call;
- warm-up at load, ``torch.inference_mode``, cached GPU memory released after every job, and on
  CUDA out-of-memory a retry in smaller pieces, then ``engine_out_of_memory``;
- an engine version that names the model files' content, upstream's code and the runtime.

torch and upstream are imported in :meth:`CosyVoiceEngine.load` only: building the engine, its
voices and its version stay cheap and torch-free for the API process.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from steadyvoice.engines.base import Audio, FloatAudio, SynthesisRequest, VoiceTarget
from steadyvoice.engines.cosyvoice import gpu
from steadyvoice.engines.cosyvoice.audio import (
    check_reference,
    checked_output,
    prompt_wav,
    synthetic_prompt,
)
from steadyvoice.engines.cosyvoice.files import (
    FileHashes,
    is_code_file,
    is_model_file,
    runtime_label,
)
from steadyvoice.engines.cosyvoice.languages import model_languages
from steadyvoice.engines.cosyvoice.model import (
    Opened,
    Seeder,
    Upstream,
    call_upstream,
    code_dirs,
    inspect_model_dir,
    open_model,
)
from steadyvoice.engines.cosyvoice.prompts import (
    INSTRUCTIONS,
    PROMPT_VOICE,
    Call,
    Formatter,
    upstream_instruction,
)
from steadyvoice.engines.cosyvoice.threads import ThreadWatch
from steadyvoice.engines.interrupt import checkpoint
from steadyvoice.errors import EngineOutOfMemory, EngineUnavailable, InvalidRequest, UnknownVoice
from steadyvoice.observability.logs import event
from steadyvoice.settings import ConfigurationError, CosyVoiceSettings

log = logging.getLogger("steadyvoice.cosyvoice")

# Bump when the adapter changes what reaches upstream or what it makes of the output.
ADAPTER_SCHEME = "a1"
HASH_CACHE = "cosyvoice-file-hashes.json"
WARMUP_TEXT = "Hello. This is a short warm-up sentence."
_RUNTIME_DISTS = ("torch", "torchaudio", "onnxruntime", "onnxruntime-gpu", "transformers")
_FLAG_DISTS = {"load_trt": ("tensorrt-cu12",), "load_vllm": ("vllm",)}


@dataclass(frozen=True)
class _Loaded:
    model: Upstream
    seed: Seeder
    hop: int | None  # upstream's initial streaming hop (token_hop_len), restored before each call
    formatter: Formatter
    scratch: Path  # prompt WAVs live here for the length of one call
    watch: ThreadWatch


class CosyVoiceEngine:
    """CosyVoice2 / Fun-CosyVoice3 from a local model directory, one synthesis at a time.

    Voice profiles are cloned zero-shot (reference + transcript), cross-lingually, or with an
    instruction (``SynthesisRequest.instructions``); plain voice names are the model's built-in
    speakers listed in ``cosyvoice.speakers``. Non-streaming output is repeatable on the same
    hardware and software (see docs/engines/cosyvoice.md for what is and is not bit-exact).
    """

    name = "cosyvoice"

    def __init__(self, settings: CosyVoiceSettings, cache_dir: Path | None = None) -> None:
        self._settings = settings
        self._dir = inspect_model_dir(settings)
        self._hashes = FileHashes(cache_dir / HASH_CACHE if cache_dir is not None else None)
        speakers = tuple(settings.speakers)
        if settings.default_voice is not None and settings.default_voice not in speakers:
            raise ConfigurationError(
                f"cosyvoice.default_voice {settings.default_voice!r} is not one of "
                f"cosyvoice.speakers {list(speakers)}"
            )
        self._formatter = Formatter(
            generation=self._dir.generation,
            speakers=speakers,
            text_frontend=settings.text_frontend,
            max_chars=settings.max_segment_chars,
        )
        self._lock = threading.Lock()  # one synthesis at a time on this model instance
        self._loaded: _Loaded | None = None

    @property
    def generation(self) -> int:
        return self._dir.generation

    def voices(self) -> list[str]:
        return list(self._formatter.speakers)

    def default_voice(self) -> str:
        """The first built-in speaker; ``clone`` (profiles only) when the model has none."""
        if self._settings.default_voice is not None:
            return self._settings.default_voice
        return self._formatter.speakers[0] if self._formatter.speakers else PROMPT_VOICE

    def voice_languages(self, voice: str) -> tuple[str, ...]:
        """Every voice speaks the model's languages (:mod:`.languages`)."""
        if voice != PROMPT_VOICE and voice not in self._formatter.speakers:
            raise UnknownVoice(f"unknown voice {voice!r}", voice=voice)
        return model_languages(self._dir.generation)

    def version(self, voice: str, adapted: bool = False) -> str:
        model = self._hashes.tree(self._dir.path, is_model_file)[:16]
        code = self._code_hash()
        settings = self._settings
        flags = [f for f in ("load_trt", "load_vllm", "fp16") if getattr(settings, f)]
        if not settings.reproducible:
            flags.append("nondeterministic")
        if not settings.text_frontend:
            flags.append("nofrontend")
        dists = [*_RUNTIME_DISTS, *(d for f in flags for d in _FLAG_DISTS.get(f, ()))]
        runtime = runtime_label(dists)
        base = (
            f"cosyvoice{self._dir.generation}+{ADAPTER_SCHEME}+{runtime}"
            f"+{'-'.join(['seg', str(settings.max_segment_chars), *flags])}"
            f"+code-{code}+model-{model}"
        )
        return f"{base}+prompt" if adapted else base

    def check_target(self, target: VoiceTarget) -> None:
        check_reference(target)

    def check_request(self, request: SynthesisRequest) -> None:
        """Everything that can be refused without the model (the mode, texts, the reference)."""
        self._formatter.mode(request)
        if request.target is not None:
            check_reference(request.target)

    def load(self) -> None:
        """Build the model, check speakers and instructions, and warm it up; then it is ready."""
        with self._lock:
            if self._loaded is not None:
                return
            started = time.monotonic()
            opened = open_model(self._settings, self._dir)
            loaded = self._prepare(opened)
            if self._settings.warmup:
                self._warm_up(loaded)
            self._loaded = loaded
        event(
            log,
            "cosyvoice.ready",
            generation=self._dir.generation,
            sample_rate=loaded.model.sample_rate,
            speakers=len(loaded.formatter.speakers),
            seconds=round(time.monotonic() - started, 2),
        )

    def synthesize(self, request: SynthesisRequest) -> Audio:
        loaded = self._require_loaded()
        calls = loaded.formatter.calls(request)
        with self._lock:
            try:
                return self._render_or_retry(loaded, request, calls)
            finally:
                gpu.release_cached_memory()

    def stream(self, request: SynthesisRequest) -> Iterator[Audio]:
        """Chunks as upstream's streaming mode makes them (not bit-exact; ``speed`` must be 1).

        Checks run now; the model is taken at the first ``next`` and held until the iterator is
        exhausted or closed.
        """
        loaded = self._require_loaded()
        if request.speed != 1.0:
            raise InvalidRequest(
                "speed is not available when streaming (upstream ignores it in stream mode)",
                speed=request.speed,
            )
        calls = loaded.formatter.calls(request)
        return self._stream(loaded, request, calls)

    def device_memory_bytes(self) -> int:
        """GPU memory held by this process's tensors (the model, and anything leaked)."""
        return gpu.device_memory_bytes() if self._loaded is not None else 0

    # --- inside the lock -----------------------------------------------------------------

    def _render_or_retry(
        self, loaded: _Loaded, request: SynthesisRequest, calls: list[Call]
    ) -> Audio:
        try:
            return self._render(loaded, request, calls)
        except Exception as exc:
            if not gpu.is_out_of_memory(exc):
                raise
            first = str(exc)
        # Outside the handler: the traceback, and the tensors its frames held, are gone.
        self._recover(loaded)
        retry_chars = self._settings.oom_retry_segment_chars
        event(log, "cosyvoice.out_of_memory", retry_chars=retry_chars, error=first[:200])
        smaller = loaded.formatter.calls(request, split_chars=retry_chars)
        try:
            return self._render(loaded, request, smaller)
        except Exception as exc:
            if not gpu.is_out_of_memory(exc):
                raise
            second = str(exc)
        self._recover(loaded)
        event(log, "cosyvoice.out_of_memory", retry_chars=None, error=second[:200])
        raise EngineOutOfMemory(
            f"out of GPU memory, also with the text in pieces of {retry_chars} characters",
            text_chars=len(request.text),
            retry_chars=retry_chars,
        )

    def _render(self, loaded: _Loaded, request: SynthesisRequest, calls: list[Call]) -> Audio:
        parts = self._parts(loaded, request, calls)
        joined = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        samples = checked_output(joined.astype(np.float32, copy=False), request.text)
        return Audio(samples=samples, sample_rate=loaded.model.sample_rate, sentences=len(parts))

    def _parts(
        self, loaded: _Loaded, request: SynthesisRequest, calls: list[Call]
    ) -> list[FloatAudio]:
        """Every call in turn, non-streaming; one array per segment upstream yields."""
        parts: list[FloatAudio] = []
        with self._prompt(loaded, request, calls) as prompt:
            for call in calls:
                checkpoint()  # a canceled job stops here (steadyvoice.engines.interrupt)
                speech = self._run(loaded, call, prompt, request, stream=False)
                parts.extend(gpu.to_samples(s) for s in speech)
        return parts

    def _stream(
        self, loaded: _Loaded, request: SynthesisRequest, calls: list[Call]
    ) -> Iterator[Audio]:
        rate = loaded.model.sample_rate
        with self._lock:
            try:
                with self._prompt(loaded, request, calls) as prompt:
                    for call in calls:
                        # Closed here, inside the lock, when the consumer closes this stream:
                        # upstream's call is given up before the next job may take the model.
                        run = self._run(loaded, call, prompt, request, stream=True)
                        with contextlib.closing(run):
                            for chunk in run:
                                samples = checked_output(gpu.to_samples(chunk), "")
                                yield Audio(samples=samples, sample_rate=rate)
            except Exception as exc:
                if not gpu.is_out_of_memory(exc):
                    raise
                message = str(exc)
            else:
                return
            finally:
                gpu.release_cached_memory()
            self._recover(loaded)
            raise EngineOutOfMemory(f"out of GPU memory while streaming: {message[:200]}")

    def _run(
        self,
        loaded: _Loaded,
        call: Call,
        prompt: str | None,
        request: SynthesisRequest,
        *,
        stream: bool,
    ) -> Generator[Any, None, None]:
        """One upstream call, its ``tts_speech`` tensors one by one.

        The chunk size is reset and the seed set immediately before the call; every step of
        upstream's generator runs under ``torch.inference_mode``.
        """
        if loaded.hop is not None:
            loaded.model.model.token_hop_len = loaded.hop
        loaded.seed(request.seed)
        speed = 1.0 if stream else request.speed
        generator = call_upstream(loaded.model, call, prompt, stream=stream, speed=speed)
        finished = False
        loaded.watch.begin()
        try:
            while True:
                with gpu.inference_mode():
                    item = next(generator, None)
                loaded.watch.raise_if_failed()
                if item is None:
                    finished = True
                    return
                yield item["tts_speech"]
        finally:
            loaded.watch.end()
            close = getattr(generator, "close", None)
            if close is not None:
                close()
            if not finished:  # upstream cleans up its per-request state only at the end
                loaded.watch.forget_requests()

    @contextlib.contextmanager
    def _prompt(
        self, loaded: _Loaded, request: SynthesisRequest, calls: list[Call]
    ) -> Iterator[str | None]:
        if request.target is None or not any(c.needs_prompt_audio for c in calls):
            yield None
            return
        with prompt_wav(request.target, loaded.scratch) as path:
            yield path

    def _recover(self, loaded: _Loaded) -> None:
        loaded.watch.forget_requests()
        gpu.release_cached_memory(collect=True)

    # --- loading -------------------------------------------------------------------------

    def _prepare(self, opened: Opened) -> _Loaded:
        model = opened.model
        available = set(model.list_available_spks())
        missing = [s for s in self._formatter.speakers if s not in available]
        if missing:
            raise EngineUnavailable(
                f"cosyvoice.speakers {missing} are not in the model (it has {sorted(available)})"
            )
        instructions = self._instructions(opened.instruct_list)
        formatter = Formatter(
            generation=self._dir.generation,
            speakers=self._formatter.speakers,
            instructions=instructions,
            text_frontend=self._settings.text_frontend,
            max_chars=self._settings.max_segment_chars,
        )
        self._formatter = formatter
        scratch = Path(tempfile.mkdtemp(prefix="steadyvoice-cosyvoice-"))
        weakref.finalize(self, shutil.rmtree, scratch, True)
        inner = getattr(model, "model", None)
        hop = getattr(inner, "token_hop_len", None)
        return _Loaded(
            model=model,
            seed=opened.seed,
            hop=hop if isinstance(hop, int) else None,
            formatter=formatter,
            scratch=scratch,
            watch=ThreadWatch(inner),
        )

    def _instructions(self, upstream: tuple[str, ...] | None) -> tuple[str, ...]:
        """Our instruction keys, less any that upstream's own list no longer has (CosyVoice3)."""
        keys = tuple(INSTRUCTIONS)
        if upstream is None or self._dir.generation < 3:
            return keys
        kept = tuple(k for k in keys if upstream_instruction(k, 3) in upstream)
        dropped = sorted(set(keys) - set(kept))
        if dropped:
            event(log, "cosyvoice.instructions_unavailable", keys=dropped)
        return kept

    def _warm_up(self, loaded: _Loaded) -> None:
        """One short synthesis: CUDA kernels, TensorRT contexts and the first-call RNG path.

        Upstream's first call after load differs from later ones (upstream #471); this is it.
        """
        if loaded.formatter.speakers:
            request = SynthesisRequest(WARMUP_TEXT, voice=loaded.formatter.speakers[0])
        else:
            target = VoiceTarget(
                voice_id="warmup",
                analysis={},
                reference_sha256="",
                reference_path=synthetic_prompt(loaded.scratch),
            )
            request = SynthesisRequest(WARMUP_TEXT, PROMPT_VOICE, target=target, cross_lingual=True)
        try:  # the output is not checked: a synthetic prompt may well give odd audio
            self._parts(loaded, request, loaded.formatter.calls(request))
        except Exception as exc:
            raise EngineUnavailable(
                f"cosyvoice warm-up failed: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            gpu.release_cached_memory()

    def _require_loaded(self) -> _Loaded:
        if self._loaded is None:
            raise EngineUnavailable("the cosyvoice engine is not loaded (call load() first)")
        return self._loaded

    def _code_hash(self) -> str:
        dirs = code_dirs(self._settings.repo_dir)
        if not dirs:
            return "none"
        digest = hashlib.sha256()
        for folder in dirs:
            digest.update(f"{folder.name}\0{self._hashes.tree(folder, is_code_file)}\n".encode())
        return digest.hexdigest()[:12]
