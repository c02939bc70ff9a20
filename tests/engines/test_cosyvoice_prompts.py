"""CosyVoice prompt formatting and text splitting: pure functions, no model, no torch."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steadyvoice.engines.base import SynthesisRequest, VoiceTarget
from steadyvoice.engines.cosyvoice.prompts import (
    END_OF_PROMPT,
    INSTRUCTIONS,
    SYSTEM_PROMPT,
    Formatter,
    Mode,
)
from steadyvoice.engines.cosyvoice.text import split_segments
from steadyvoice.errors import InvalidRequest, TextInvalid, TranscriptRequired, UnknownVoice

TRANSCRIPT = "The weather was bright and the train was on time."
LONG = " ".join(f"Sentence number {i} is here, and it goes on for a while." for i in range(12))
V3_SYSTEM = f"{SYSTEM_PROMPT}{END_OF_PROMPT}"


def _profile(transcript: str | None = TRANSCRIPT) -> VoiceTarget:
    return VoiceTarget("vp_x", {}, "0" * 64, reference_path="/nowhere.wav", transcript=transcript)


def _request(text: str = "Hello there.", **fields: object) -> SynthesisRequest:
    values: dict[str, object] = {"voice": "clone", "target": _profile()}
    values.update(fields)
    return SynthesisRequest(text=text, **values)  # type: ignore[arg-type]


def test_zero_shot_v3_puts_the_system_prompt_before_the_transcript() -> None:
    [call] = Formatter(generation=3).calls(_request(LONG))
    assert call.mode is Mode.ZERO_SHOT
    assert call.prompt_text == f"{SYSTEM_PROMPT}{END_OF_PROMPT}{TRANSCRIPT}"
    assert call.tts_text == LONG and call.text_frontend  # upstream normalizes and splits


def test_zero_shot_v2_sends_the_plain_transcript() -> None:
    [call] = Formatter(generation=2).calls(_request(LONG))
    assert call.mode is Mode.ZERO_SHOT
    assert call.prompt_text == TRANSCRIPT and call.tts_text == LONG
    assert END_OF_PROMPT not in call.prompt_text + call.tts_text


def test_cross_lingual_v3_prefixes_every_segment_and_splits_long_text_itself() -> None:
    calls = Formatter(generation=3, max_chars=120).calls(_request(LONG, cross_lingual=True))
    assert len(calls) > 1, "upstream will not split text holding <|...|>: the adapter must"
    for call in calls:
        assert call.mode is Mode.CROSS_LINGUAL and call.prompt_text == ""
        assert call.tts_text.startswith(V3_SYSTEM)
        assert len(call.tts_text) - len(V3_SYSTEM) <= 120
    spoken = " ".join(c.tts_text.removeprefix(V3_SYSTEM) for c in calls)
    assert spoken == LONG


def test_cross_lingual_v2_leaves_splitting_to_upstream() -> None:
    [call] = Formatter(generation=2).calls(_request(LONG, cross_lingual=True))
    assert call.mode is Mode.CROSS_LINGUAL and call.tts_text == LONG


@pytest.mark.parametrize(
    ("generation", "expected"),
    [
        (3, "You are a helpful assistant. 请用广东话表达。<|endofprompt|>"),
        (2, "请用广东话表达。<|endofprompt|>"),
    ],
)
def test_instruct_formats_upstreams_instruction(generation: int, expected: str) -> None:
    [call] = Formatter(generation=generation).calls(_request(instructions="cantonese"))
    assert call.mode is Mode.INSTRUCT and call.instruct_text == expected
    assert call.tts_text == "Hello there." and call.prompt_text == ""


def test_every_instruction_key_names_dialect_emotion_speed_volume_or_style() -> None:
    assert len(INSTRUCTIONS) == 26
    assert {"cantonese", "sichuanese", "happy", "sad", "angry", "fast", "slow", "loud"} <= set(
        INSTRUCTIONS
    )


def test_built_in_speakers_v3_carry_the_system_prompt_in_the_text() -> None:
    formatter = Formatter(generation=3, speakers=("中文女",), max_chars=100)
    calls = formatter.calls(SynthesisRequest(LONG, voice="中文女"))
    assert len(calls) > 1
    assert all(c.mode is Mode.SFT and c.speaker == "中文女" for c in calls)
    assert all(c.tts_text.startswith(V3_SYSTEM) for c in calls)
    [v2] = Formatter(generation=2, speakers=("中文女",)).calls(SynthesisRequest(LONG, "中文女"))
    assert v2.tts_text == LONG


def test_without_the_text_frontend_the_adapter_splits_every_mode() -> None:
    formatter = Formatter(generation=3, text_frontend=False, max_chars=80)
    calls = formatter.calls(_request(LONG))
    assert len(calls) > 1 and all(not c.text_frontend for c in calls)
    assert all(len(c.tts_text) <= 80 for c in calls)


def test_a_forced_split_breaks_up_zero_shot_too() -> None:
    calls = Formatter(generation=3).calls(_request(LONG), split_chars=40)
    assert len(calls) > 5 and all(len(c.tts_text) <= 40 for c in calls)
    assert all(c.prompt_text.endswith(TRANSCRIPT) for c in calls)


@pytest.mark.parametrize(
    ("fields", "error", "code"),
    [
        ({"text": "Say <|endofprompt|> now"}, TextInvalid, "text_invalid"),
        ({"instructions": "whisper"}, InvalidRequest, "invalid_request"),
        ({"instructions": "happy", "cross_lingual": True}, InvalidRequest, "invalid_request"),
        ({"target": _profile(None)}, TranscriptRequired, "transcript_required"),
        ({"target": _profile("Hi <|en|> there")}, TextInvalid, "text_invalid"),
        ({"target": None, "voice": "nobody"}, UnknownVoice, "unknown_voice"),
        ({"target": None, "voice": "中文女", "instructions": "happy"}, InvalidRequest, None),
        ({"speed": 3.0}, InvalidRequest, "invalid_request"),
    ],
)
def test_refusals_carry_stable_codes(
    fields: dict[str, object], error: type[Exception], code: str | None
) -> None:
    text = str(fields.pop("text", "Hello there."))
    formatter = Formatter(generation=3, speakers=("中文女",))
    with pytest.raises(error) as caught:
        formatter.calls(_request(text, **fields))
    if code is not None:
        assert getattr(caught.value, "code", None) == code


def test_cross_lingual_needs_no_transcript() -> None:
    [call] = Formatter(generation=3).calls(_request(target=_profile(None), cross_lingual=True))
    assert call.mode is Mode.CROSS_LINGUAL


def test_instructions_upstream_dropped_are_refused() -> None:
    formatter = Formatter(generation=3, instructions=("happy",))
    with pytest.raises(InvalidRequest) as caught:
        formatter.calls(_request(instructions="cantonese"))
    assert caught.value.details["allowed"] == ["happy"]


def test_chinese_text_splits_at_full_stops_without_spaces() -> None:
    text = "今天天气很好。我们去公园散步吧！你觉得怎么样？" * 4  # noqa: RUF001
    pieces = split_segments(text, 30)
    assert len(pieces) > 1 and all(len(p) <= 30 for p in pieces)
    assert "".join(pieces) == text


@given(
    st.lists(
        st.text(alphabet="abcdefg ,.!?。\uff0c", min_size=1, max_size=60), min_size=1, max_size=8
    ),
    st.integers(min_value=10, max_value=120),
)
def test_split_segments_never_exceeds_the_limit_and_keeps_every_word(
    parts: list[str], limit: int
) -> None:
    text = " ".join(parts).strip() or "a"
    pieces = split_segments(text, limit)
    assert pieces and all(0 < len(p) <= limit for p in pieces)
    squash = re.compile(r"\s+")
    assert squash.sub("", "".join(pieces)) == squash.sub("", text)
