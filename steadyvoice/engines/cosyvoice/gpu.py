"""GPU hygiene for the CosyVoice engine. torch is imported only when a function runs."""

from __future__ import annotations

import gc
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from steadyvoice.engines.base import FloatAudio

_OOM_TEXT = "out of memory"  # torch, onnxruntime's CUDA provider and TensorRT all say this


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA out-of-memory, whichever library in the stack ran out."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, Exception) and _OOM_TEXT in str(exc).lower()


def release_cached_memory(collect: bool = False) -> None:
    """Hand cached GPU blocks back to the driver; ``collect`` first drops unreachable tensors."""
    import torch

    if collect:
        gc.collect()
    torch.cuda.empty_cache()  # a no-op where CUDA never started


def device_memory_bytes() -> int:
    """GPU memory held by live tensors of this process (0 without CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return 0
    return int(torch.cuda.memory_allocated())


def inference_mode() -> AbstractContextManager[Any]:
    import torch

    return torch.inference_mode()


def to_samples(speech: Any) -> FloatAudio:
    """An upstream ``tts_speech`` tensor ([1, n] float32, on CPU) as mono float32 samples."""
    array = speech.detach().to("cpu").float().numpy().reshape(-1)
    samples: FloatAudio = np.asarray(array, dtype=np.float32)
    return samples
