"""Finding, checking and opening an upstream CosyVoice model.

:func:`inspect_model_dir` is cheap and torch-free (the API process runs it); :func:`open_model`
imports upstream and torch and builds the model (workers only). Upstream is not a pip package:
its repository root and ``third_party/Matcha-TTS`` go on ``sys.path``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from steadyvoice.engines.cosyvoice.prompts import Call, Mode
from steadyvoice.errors import EngineUnavailable
from steadyvoice.settings import ConfigurationError, CosyVoiceSettings

# The yaml that upstream's AutoModel picks the class by.
CONFIGS = {"cosyvoice3.yaml": 3, "cosyvoice2.yaml": 2}
TRT_ONNX = "flow.decoder.estimator.fp32.onnx"
MATCHA = Path("third_party") / "Matcha-TTS"
# Upstream (or libraries below it) must never reach a hub: weights come from model_dir only.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
# cuBLAS needs this set before CUDA starts to choose reproducible GEMM workspaces.
REPRODUCIBLE_ENV = {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}

Seeder = Callable[[int], None]


class Upstream(Protocol):
    """The part of upstream's ``CosyVoice2`` / ``CosyVoice3`` object the adapter uses."""

    sample_rate: int
    model: Any

    def list_available_spks(self) -> list[str]: ...


@dataclass(frozen=True)
class ModelDir:
    """A local model directory and the CosyVoice generation its config names."""

    path: Path
    generation: int


@dataclass(frozen=True)
class Opened:
    """A built upstream model plus upstream's seeding helper and its instruction list."""

    model: Upstream
    seed: Seeder
    instruct_list: tuple[str, ...] | None


def inspect_model_dir(settings: CosyVoiceSettings) -> ModelDir:
    """Check the directory and the flags against each other; no torch, no upstream import."""
    raw = settings.model_dir
    if raw is None:
        raise ConfigurationError(
            "the cosyvoice engine needs STEADYVOICE_COSYVOICE__MODEL_DIR: the local directory "
            "of a CosyVoice2 or Fun-CosyVoice3 model (docs/engines/cosyvoice.md)"
        )
    if not raw.is_dir():
        raise ConfigurationError(
            f"cosyvoice.model_dir {str(raw)!r} is not a local directory. steadyvoice never "
            "downloads models (a hub id such as 'FunAudioLLM/Fun-CosyVoice3-0.5B-2512' is "
            "refused): download the model once and give its path"
        )
    path = raw.resolve()
    generation = next((g for name, g in CONFIGS.items() if (path / name).is_file()), None)
    if generation is None:
        found = "cosyvoice.yaml (CosyVoice v1)" if (path / "cosyvoice.yaml").is_file() else None
        raise ConfigurationError(
            f"cosyvoice.model_dir {str(path)!r} holds no cosyvoice2.yaml or cosyvoice3.yaml"
            + (f"; found {found}, which this engine does not serve" if found else "")
        )
    model = ModelDir(path, generation)
    _check_flags(settings, model)
    _check_repo(settings.repo_dir)
    return model


def _check_flags(settings: CosyVoiceSettings, model: ModelDir) -> None:
    if settings.fp16 and settings.load_trt and model.generation >= 3:
        raise ConfigurationError(
            "cosyvoice.fp16 with cosyvoice.load_trt on CosyVoice3 produces NaN or silent audio "
            "(upstream issues #1930, #1822, #1873): use fp32 TensorRT (fp16=false)"
        )
    if settings.load_trt and not (model.path / TRT_ONNX).is_file() and not _plans(model.path):
        raise ConfigurationError(
            f"cosyvoice.load_trt needs {TRT_ONNX} (or a TensorRT plan built from it) in "
            f"{model.path}; the Hugging Face copy of Fun-CosyVoice3 lacks it, ModelScope's has it"
        )
    exported = (model.path / "vllm").is_dir()
    if settings.load_vllm and not exported and not os.access(model.path, os.W_OK):
        raise ConfigurationError(
            f"cosyvoice.load_vllm exports the LLM to {model.path / 'vllm'} on first start, "
            "but the model dir is not writable: run once with write access, or turn vLLM off"
        )


def _plans(path: Path) -> list[Path]:
    return [p for p in path.glob("flow.decoder.estimator.*.plan") if p.stat().st_size > 0]


def _check_repo(repo: Path | None) -> None:
    if repo is not None and not (repo / "cosyvoice").is_dir():
        raise ConfigurationError(
            f"cosyvoice.repo_dir {str(repo)!r} is not a CosyVoice checkout (no cosyvoice/ in it)"
        )


def code_dirs(repo: Path | None) -> list[Path]:
    """Where upstream's Python code lives, found without importing it."""
    if repo is not None:
        return [d for d in (repo / "cosyvoice", repo / MATCHA / "matcha") if d.is_dir()]
    spec = importlib.util.find_spec("cosyvoice")
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(next(iter(spec.submodule_search_locations)))]


def open_model(settings: CosyVoiceSettings, model: ModelDir) -> Opened:
    """Import upstream and build the model from the local directory (slow; workers only)."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    if settings.reproducible:
        for key, value in REPRODUCIBLE_ENV.items():
            os.environ.setdefault(key, value)
    _put_on_path(settings.repo_dir)
    try:
        import torch

        auto_model = importlib.import_module("cosyvoice.cli.cosyvoice").AutoModel
        common = importlib.import_module("cosyvoice.utils.common")
    except ImportError as exc:
        raise EngineUnavailable(
            f"cannot import upstream CosyVoice ({exc}); install the cosyvoice extra and set "
            "cosyvoice.repo_dir to a checkout (docs/engines/cosyvoice.md)"
        ) from exc
    _refuse_cpu_only_flags(settings, torch.cuda.is_available())
    if settings.reproducible:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    if settings.load_vllm:
        _register_vllm()
    built = auto_model(
        model_dir=str(model.path),
        load_trt=settings.load_trt,
        load_vllm=settings.load_vllm,
        fp16=settings.fp16,
        trt_concurrent=settings.trt_concurrent,
    )
    _check_interface(built)
    listed = getattr(common, "instruct_list", None)
    return Opened(
        model=cast(Upstream, built),
        seed=common.set_all_random_seed,
        instruct_list=tuple(str(s) for s in listed) if isinstance(listed, list | tuple) else None,
    )


def _put_on_path(repo: Path | None) -> None:
    if repo is None:
        return
    for entry in (repo / MATCHA, repo):
        if str(entry) not in sys.path:
            sys.path.insert(0, str(entry))


def _refuse_cpu_only_flags(settings: CosyVoiceSettings, cuda: bool) -> None:
    """Upstream silently drops these flags without CUDA; the engine version would then lie."""
    asked = [f for f in ("load_trt", "load_vllm", "fp16") if getattr(settings, f)]
    if asked and not cuda:
        raise EngineUnavailable(
            f"cosyvoice.{', cosyvoice.'.join(asked)} need a CUDA GPU and none is visible "
            "(check CUDA_VISIBLE_DEVICES and the torch build)"
        )


def _register_vllm() -> None:
    try:
        registry = importlib.import_module("vllm").ModelRegistry
        llm = importlib.import_module("cosyvoice.vllm.cosyvoice2").CosyVoice2ForCausalLM
    except ImportError as exc:
        raise EngineUnavailable(f"cosyvoice.load_vllm needs vLLM: {exc}") from exc
    registry.register_model("CosyVoice2ForCausalLM", llm)


def _check_interface(built: object) -> None:
    """Upstream before commit 622a3a1 took prompt audio as a 16 kHz tensor; we pass paths."""
    method = getattr(built, "inference_zero_shot", None)
    if method is None or "prompt_wav" not in inspect.signature(method).parameters:
        raise EngineUnavailable(
            "this upstream CosyVoice checkout predates prompt audio by path (commit 622a3a1); "
            "use the pinned revision from docs/engines/cosyvoice.md"
        )


def call_upstream(
    model: Upstream, call: Call, prompt: str | None, *, stream: bool, speed: float
) -> Iterator[dict[str, Any]]:
    """Upstream's generator for one call, all arguments by keyword."""
    kwargs: dict[str, Any] = {
        "tts_text": call.tts_text,
        "stream": stream,
        "speed": speed,
        "text_frontend": call.text_frontend,
    }
    if call.mode is Mode.SFT:
        kwargs["spk_id"] = call.speaker
    else:
        kwargs["prompt_wav"] = prompt
        # Never upstream's speaker cache: with it, instruct2 ignores instruct_text (#1400).
        kwargs["zero_shot_spk_id"] = ""
    if call.mode is Mode.ZERO_SHOT:
        kwargs["prompt_text"] = call.prompt_text
    if call.mode is Mode.INSTRUCT:
        kwargs["instruct_text"] = call.instruct_text
    method = getattr(model, call.mode.value)
    generator: Iterator[dict[str, Any]] = method(**kwargs)
    return generator
