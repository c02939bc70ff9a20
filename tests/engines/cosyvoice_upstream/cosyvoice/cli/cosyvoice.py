"""Stand-in of upstream's cosyvoice/cli/cosyvoice.py (HEAD ace7c47), as the reference describes it.

Same constructors, methods and argument names; every method is a generator yielding
``{'tts_speech': FloatTensor[1, n]}`` at 24 kHz, one item per text segment (or several chunks per
segment when streaming). Kept from upstream on purpose:

- CosyVoice3's assertion that ``<|endofprompt|>`` is in ``prompt_text + text``;
- prompt audio only as a path or file object (read with soundfile, >= 16 kHz, <= 30 s);
- the frontend skips splitting when the text holds both ``<|`` and ``|>``;
- the LLM runs in its own thread while the caller polls ``llm_end_dict``; token sampling uses the
  global torch RNG, so the seed decides the audio;
- the streaming hop ``model.token_hop_len`` doubles after each chunk and is never reset (bug);
- no lock anywhere.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import soundfile as sf
import torch

from cosyvoice import standin

SAMPLES_PER_TOKEN = 960  # 25 speech tokens per second at 24 kHz
TOKENS_PER_CHAR = 2
_SENTENCE = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])\s*")
_PROMPT_END = "<|endofprompt|>"


class _Model:
    """Stand-in of ``CosyVoice2Model``: per-request dicts and the streaming hop."""

    def __init__(self) -> None:
        self.token_hop_len = 25
        self.token_max_hop_len = 100
        self.llm_end_dict: dict[str, bool] = {}
        self.tts_speech_token_dict: dict[str, list[int]] = {}
        self.hift_cache_dict: dict[str, Any] = {}


class CosyVoice2:
    generation = 2

    def __init__(
        self,
        model_dir: str,
        load_jit: bool = False,
        load_trt: bool = False,
        load_vllm: bool = False,
        fp16: bool = False,
        trt_concurrent: int = 1,
    ) -> None:
        self._init(model_dir, load_trt=load_trt, load_vllm=load_vllm, fp16=fp16)

    def _init(self, model_dir: str, **flags: Any) -> None:
        if not os.path.isdir(model_dir):
            raise AssertionError(f"stand-in: upstream would snapshot_download({model_dir!r})")
        self.model_dir = model_dir
        self.sample_rate = 24_000
        self.model = _Model()
        standin.record("init", cls=type(self).__name__, model_dir=model_dir, **flags)

    def list_available_spks(self) -> list[str]:
        path = os.path.join(self.model_dir, "spk2info.txt")
        if not os.path.isfile(path):
            return []
        with open(path, encoding="utf-8") as handle:
            return [line.strip() for line in handle if line.strip()]

    def inference_sft(
        self,
        tts_text: str,
        spk_id: str,
        stream: bool = False,
        speed: float = 1.0,
        text_frontend: bool = True,
    ) -> Iterator[dict[str, Any]]:
        assert spk_id in self.list_available_spks(), f"unknown speaker {spk_id}"
        yield from self._inference("inference_sft", tts_text, "", stream, speed, text_frontend)

    def inference_zero_shot(
        self,
        tts_text: str,
        prompt_text: str,
        prompt_wav: Any,
        zero_shot_spk_id: str = "",
        stream: bool = False,
        speed: float = 1.0,
        text_frontend: bool = True,
    ) -> Iterator[dict[str, Any]]:
        self._read_prompt(prompt_wav)
        yield from self._inference(
            "inference_zero_shot", tts_text, prompt_text, stream, speed, text_frontend
        )

    def inference_cross_lingual(
        self,
        tts_text: str,
        prompt_wav: Any,
        zero_shot_spk_id: str = "",
        stream: bool = False,
        speed: float = 1.0,
        text_frontend: bool = True,
    ) -> Iterator[dict[str, Any]]:
        self._read_prompt(prompt_wav)
        yield from self._inference(
            "inference_cross_lingual", tts_text, "", stream, speed, text_frontend
        )

    def inference_instruct(self, *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        raise AssertionError("inference_instruct is only implemented for CosyVoice!")
        yield {}

    def inference_instruct2(
        self,
        tts_text: str,
        instruct_text: str,
        prompt_wav: Any,
        zero_shot_spk_id: str = "",
        stream: bool = False,
        speed: float = 1.0,
        text_frontend: bool = True,
    ) -> Iterator[dict[str, Any]]:
        self._read_prompt(prompt_wav)
        yield from self._inference(
            "inference_instruct2", tts_text, instruct_text, stream, speed, text_frontend
        )

    # --- the stand-in's insides ---------------------------------------------------------

    def _read_prompt(self, prompt_wav: Any) -> None:
        if isinstance(prompt_wav, torch.Tensor):
            raise TypeError("prompt_wav must be a path or file object (torchaudio.load reads it)")
        info = sf.info(prompt_wav)
        assert info.samplerate >= 16_000, f"wav sample rate {info.samplerate} must be >= 16000"
        assert info.duration <= 30, "do not support extract speech token for audio longer than 30s"
        standin.record("prompt", path=str(prompt_wav), rate=info.samplerate, channels=info.channels)

    def _inference(
        self,
        method: str,
        tts_text: str,
        prompt_text: str,
        stream: bool,
        speed: float,
        text_frontend: bool,
    ) -> Iterator[dict[str, Any]]:
        standin.record(
            "call",
            method=method,
            tts_text=tts_text,
            prompt_text=prompt_text,
            stream=stream,
            speed=speed,
            text_frontend=text_frontend,
            inference_mode=torch.is_inference_mode_enabled(),
            hop=self.model.token_hop_len,
            torch_seed=torch.initial_seed(),
        )
        for segment in self._frontend(tts_text, text_frontend):
            self._check_prompt(prompt_text, segment)
            yield from self._tts(segment, stream, speed)

    @staticmethod
    def _frontend(text: str, text_frontend: bool) -> list[str]:
        if not text_frontend or ("<|" in text and "|>" in text):
            return [text]
        return [s for s in _SENTENCE.split(text) if s.strip()] or [text]

    def _check_prompt(self, prompt_text: str, segment: str) -> None:
        return None

    def _tts(self, segment: str, stream: bool, speed: float) -> Iterator[dict[str, Any]]:
        faults = standin.faults(self.model_dir)
        spoken = segment.split(_PROMPT_END)[-1]
        this_uuid = uuid.uuid4().hex
        with standin.busy():
            tokens = self._llm(spoken, faults)
            self.model.tts_speech_token_dict[this_uuid] = tokens
            if faults.get("oom_in", "flow") == "flow" and _runs_out(spoken, faults):
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            speech = _token2wav(tokens, speed, bool(faults.get("nan")))
        if not stream:
            yield {"tts_speech": speech}
        else:
            start = 0
            while start < speech.shape[1]:
                hop = self.model.token_hop_len * SAMPLES_PER_TOKEN
                yield {"tts_speech": speech[:, start : start + hop]}
                start += hop
                self.model.token_hop_len = min(
                    self.model.token_max_hop_len, self.model.token_hop_len * 2
                )
        # Like upstream: per-request state is dropped only when the generator runs to its end.
        self.model.tts_speech_token_dict.pop(this_uuid)

    def _llm(self, spoken: str, faults: dict[str, Any]) -> list[int]:
        """Upstream's shape: the LLM in a thread, the caller polling a per-request flag."""
        this_uuid = uuid.uuid4().hex
        self.model.llm_end_dict[this_uuid] = False
        tokens: list[int] = []

        def llm_job() -> None:
            if faults.get("oom_in") == "llm" and _runs_out(spoken, faults):
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
            count = max(4, TOKENS_PER_CHAR * len(spoken))
            tokens.extend(torch.randint(0, 6561, (count,)).tolist())
            time.sleep(float(faults.get("work_seconds", 0.0)))
            self.model.llm_end_dict[this_uuid] = True

        thread = threading.Thread(target=llm_job)
        thread.start()
        while not self.model.llm_end_dict[this_uuid]:
            time.sleep(0.002)
        thread.join()
        self.model.llm_end_dict.pop(this_uuid)
        return tokens


class CosyVoice3(CosyVoice2):
    generation = 3

    def __init__(  # no load_jit, like upstream
        self,
        model_dir: str,
        load_trt: bool = False,
        load_vllm: bool = False,
        fp16: bool = False,
        trt_concurrent: int = 1,
    ) -> None:
        self._init(model_dir, load_trt=load_trt, load_vllm=load_vllm, fp16=fp16)

    def _check_prompt(self, prompt_text: str, segment: str) -> None:
        assert _PROMPT_END in prompt_text + segment, (
            "<|endofprompt|> not detected in CosyVoice3 text or prompt_text"
        )


class LegacyCosyVoice3(CosyVoice3):
    """Upstream before 622a3a1: the prompt was a 16 kHz tensor named prompt_speech_16k."""

    def inference_zero_shot(  # type: ignore[override]
        self,
        tts_text: str,
        prompt_text: str,
        prompt_speech_16k: Any,
        zero_shot_spk_id: str = "",
        stream: bool = False,
        speed: float = 1.0,
        text_frontend: bool = True,
    ) -> Iterator[dict[str, Any]]:
        raise AssertionError("legacy stand-in is never called")
        yield {}


def AutoModel(**kwargs: Any) -> CosyVoice2:
    model_dir = kwargs["model_dir"]
    if not os.path.isdir(model_dir):
        raise AssertionError(f"stand-in: upstream would snapshot_download({model_dir!r})")
    if os.path.isfile(os.path.join(model_dir, "cosyvoice3.yaml")):
        if standin.faults(model_dir).get("legacy_interface"):
            return LegacyCosyVoice3(**kwargs)
        return CosyVoice3(**kwargs)
    if os.path.isfile(os.path.join(model_dir, "cosyvoice2.yaml")):
        return CosyVoice2(**kwargs)
    raise TypeError(f"No valid model type found in {model_dir}")


def _runs_out(spoken: str, faults: dict[str, Any]) -> bool:
    marker = faults.get("oom_marker")
    if marker and marker in spoken:
        return True
    limit = faults.get("oom_over_chars")
    return limit is not None and len(spoken) > int(limit)


def _token2wav(tokens: list[int], speed: float, nan: bool) -> torch.Tensor:
    """A waveform decided by the tokens only: same tokens, same samples."""
    if not tokens:
        return torch.zeros(1, 0)
    n = int(len(tokens) * SAMPLES_PER_TOKEN / speed)
    index = (torch.arange(n) * speed / SAMPLES_PER_TOKEN).long().clamp(max=len(tokens) - 1)
    freq = 100.0 + (torch.tensor(tokens, dtype=torch.float32)[index] % 300.0)
    phase = torch.cumsum(2 * torch.pi * freq / 24_000, dim=0)
    wave = 0.3 * torch.sin(phase).unsqueeze(0)
    return torch.full_like(wave, float("nan")) if nan else wave.clamp(-0.99, 0.99)
