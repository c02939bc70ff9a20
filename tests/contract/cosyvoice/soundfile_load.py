"""``torchaudio.load`` by soundfile, for the contract suite only.

torchaudio 2.9 and later route ``load`` through torchcodec, whose wheel here is a CUDA build that
cannot load on a CPU-only host. Upstream's ``load_wav`` calls ``torchaudio.load(path,
backend='soundfile')``; this reader gives it what the soundfile backend gave: float32
``(channels, samples)`` and the file's rate.
"""

from __future__ import annotations

from typing import Any


def _load(source: Any, *args: Any, **kwargs: Any) -> tuple[Any, int]:
    import soundfile
    import torch

    data, rate = soundfile.read(source, dtype="float32", always_2d=True)
    return torch.from_numpy(data.T.copy()), int(rate)


def install() -> None:
    import torchaudio  # type: ignore[import-not-found]

    torchaudio.load = _load
