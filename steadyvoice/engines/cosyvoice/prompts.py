"""How a request becomes upstream CosyVoice calls: the mode, the prompt texts, the segments.

CosyVoice3's LLM asserts that ``<|endofprompt|>`` occurs in ``prompt_text + tts_text``; upstream's
own servers and web UI leave that to the caller and fail. The adapter writes it, following
upstream's ``example.py``:

- zero-shot: ``prompt_text = SYSTEM + <|endofprompt|> + transcript``;
- cross-lingual and built-in speakers: the system prompt goes in front of every text segment,
  which makes upstream skip its frontend, so the adapter splits long text itself;
- instruct: ``instruct_text = SYSTEM + " " + instruction + <|endofprompt|>``.

CosyVoice2 takes the plain transcript, and ``instruction + <|endofprompt|>`` for instruct.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from steadyvoice.engines.base import SynthesisRequest
from steadyvoice.engines.cosyvoice.text import refuse_control_tokens, split_segments
from steadyvoice.errors import InvalidRequest, TranscriptRequired, UnknownVoice

END_OF_PROMPT = "<|endofprompt|>"
SYSTEM_PROMPT = "You are a helpful assistant."
PROMPT_VOICE = "clone"  # the base voice of profile jobs when the model has no built-in speakers
MIN_SPEED, MAX_SPEED = 0.5, 2.0  # upstream's own UI range; speed is a mel-length stretch

_DIALECTS = {
    "cantonese": "广东话",
    "northeastern": "东北话",
    "gansu": "甘肃话",
    "guizhou": "贵州话",
    "henan": "河南话",
    "hubei": "湖北话",
    "hunan": "湖南话",
    "jiangxi": "江西话",
    "minnan": "闽南话",
    "ningxia": "宁夏话",
    "shanxi": "山西话",
    "shaanxi": "陕西话",
    "shandong": "山东话",
    "shanghainese": "上海话",
    "sichuanese": "四川话",
    "tianjin": "天津话",
    "yunnan": "云南话",
}

# Stable keys clients send, mapped to the instruction sentences of upstream's
# ``cosyvoice/utils/common.py:instruct_list`` (CosyVoice3 was trained on exactly these).
INSTRUCTIONS: dict[str, str] = {
    **{key: f"请用{name}表达。" for key, name in _DIALECTS.items()},
    "loud": "Please say a sentence as loudly as possible.",
    "soft": "Please say a sentence in a very soft voice.",
    "slow": "请用尽可能慢地语速说一句话。",
    "fast": "请用尽可能快地语速说一句话。",
    "happy": "请非常开心地说一句话。",
    "sad": "请非常伤心地说一句话。",
    "angry": "请非常生气地说一句话。",
    "peppa_pig": "我想体验一下小猪佩奇风格，可以吗？",  # noqa: RUF001 - upstream's exact text
    "robot": "你可以尝试用机器人的方式解答吗？",  # noqa: RUF001 - upstream's exact text
}


class Mode(StrEnum):
    """Upstream's inference methods that the adapter uses."""

    SFT = "inference_sft"
    ZERO_SHOT = "inference_zero_shot"
    CROSS_LINGUAL = "inference_cross_lingual"
    INSTRUCT = "inference_instruct2"


@dataclass(frozen=True)
class Call:
    """One upstream call: the method, its texts, and whether upstream may normalize and split."""

    mode: Mode
    tts_text: str
    prompt_text: str = ""
    instruct_text: str = ""
    speaker: str = ""
    text_frontend: bool = True

    @property
    def needs_prompt_audio(self) -> bool:
        return self.mode is not Mode.SFT


@dataclass(frozen=True)
class Formatter:
    """Formats requests for one model generation (2 or 3) and one set of built-in speakers."""

    generation: int
    speakers: tuple[str, ...] = ()
    instructions: tuple[str, ...] = tuple(INSTRUCTIONS)
    text_frontend: bool = True
    max_chars: int = 200

    def mode(self, request: SynthesisRequest) -> Mode:
        """The mode a request asks for; refuses what this model cannot do."""
        refuse_control_tokens(request.text)
        if not MIN_SPEED <= request.speed <= MAX_SPEED:
            raise InvalidRequest(
                f"speed must be between {MIN_SPEED} and {MAX_SPEED} for cosyvoice",
                speed=request.speed,
                min=MIN_SPEED,
                max=MAX_SPEED,
            )
        if request.instructions is not None and request.instructions not in self.instructions:
            raise InvalidRequest(
                f"unknown instructions {request.instructions!r}",
                field="instructions",
                allowed=list(self.instructions),
            )
        if request.target is None:
            return self._speaker_mode(request)
        if request.instructions is not None and request.cross_lingual:
            raise InvalidRequest("instructions and cross_lingual cannot be combined")
        if request.instructions is not None:
            return Mode.INSTRUCT
        if request.cross_lingual:
            return Mode.CROSS_LINGUAL
        transcript = request.target.transcript
        if not transcript:
            raise TranscriptRequired(
                f"voice {request.target.voice_id} has no transcript; zero-shot cloning needs one "
                "(create the profile again with its transcript, or ask for cross_lingual)",
                voice=request.target.voice_id,
            )
        refuse_control_tokens(transcript, "transcript")
        return Mode.ZERO_SHOT

    def _speaker_mode(self, request: SynthesisRequest) -> Mode:
        if request.voice not in self.speakers:
            known = (
                f"or one of the built-in speakers {list(self.speakers)}"
                if self.speakers
                else "(this model has no built-in speakers)"
            )
            raise UnknownVoice(
                f"unknown voice {request.voice!r}: use a voice profile id {known}",
                voice=request.voice,
                available=list(self.speakers),
            )
        if request.instructions is not None or request.cross_lingual:
            raise InvalidRequest(
                "instructions and cross_lingual need a voice profile (CosyVoice2/3 cannot "
                "instruct built-in speakers)",
                voice=request.voice,
            )
        return Mode.SFT

    def calls(self, request: SynthesisRequest, split_chars: int | None = None) -> list[Call]:
        """Upstream calls for ``request``; ``split_chars`` forces the adapter to split."""
        mode = self.mode(request)
        splits = split_chars is not None or not self.text_frontend or self._hides_text(mode)
        limit = split_chars or self.max_chars
        texts = split_segments(request.text, limit) if splits else [request.text]
        return [self._call(mode, request, text) for text in texts]

    def _hides_text(self, mode: Mode) -> bool:
        """True when the system prompt sits in ``tts_text``: upstream then will not split."""
        return self.generation >= 3 and mode in (Mode.SFT, Mode.CROSS_LINGUAL)

    def _call(self, mode: Mode, request: SynthesisRequest, text: str) -> Call:
        v3 = self.generation >= 3
        frontend = self.text_frontend
        if mode is Mode.ZERO_SHOT:
            transcript = request.target.transcript if request.target else ""
            prompt = f"{SYSTEM_PROMPT}{END_OF_PROMPT}{transcript}" if v3 else str(transcript)
            return Call(mode, text, prompt_text=prompt, text_frontend=frontend)
        if mode is Mode.INSTRUCT:
            instruct = upstream_instruction(str(request.instructions), self.generation)
            return Call(mode, text, instruct_text=instruct, text_frontend=frontend)
        tts_text = f"{SYSTEM_PROMPT}{END_OF_PROMPT}{text}" if v3 else text
        speaker = request.voice if mode is Mode.SFT else ""
        return Call(mode, tts_text, speaker=speaker, text_frontend=frontend)


def upstream_instruction(key: str, generation: int) -> str:
    """The exact ``instruct_text`` sent upstream for an instruction key."""
    body = INSTRUCTIONS[key]
    if generation >= 3:
        return f"{SYSTEM_PROMPT} {body}{END_OF_PROMPT}"
    return f"{body}{END_OF_PROMPT}"
