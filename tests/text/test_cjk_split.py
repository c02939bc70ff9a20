"""Chinese and Japanese sentence and clause splitting: no spaces needed between sentences.

English splitting must not change at all (the fake engine's and the streaming pieces' bytes
depend on it): the engines' splitter is checked against the rule it had before, on any text
without CJK marks.
"""

# The cases are Chinese and Japanese text, written as such: full-width punctuation is meant.
# ruff: noqa: RUF001

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steadyvoice.engines import sentences
from steadyvoice.text import split_sentences

WIDE = 1_000

CJK_SENTENCES = [
    # Full stop, exclamation, question mark and semicolon end a sentence, no space needed.
    (
        "今天很好；我们走吧。",
        ["今天很好；", "我们走吧。"],
    ),
    # Japanese, with the half-width full stop too.
    (
        "こんにちは。元気ですか？はい｡そうです",
        [
            "こんにちは。",
            "元気ですか？",
            "はい｡",
            "そうです",
        ],
    ),
    # Closing quotes stay with their sentence.
    (
        "\u201c你好。\u201d他说。",
        ["\u201c你好。\u201d", "他说。"],
    ),
    (
        "「はい。」と言った。",
        ["「はい。」", "と言った。"],
    ),
    # ASCII marks between two CJK characters end a sentence as well.
    (
        "你好!我们走吧.好?行",
        ["你好!", "我们走吧.", "好?", "行"],
    ),
    # ...but not between digits or Latin letters inside Chinese text.
    (
        "利率为3.5%，v1.2版。",
        ["利率为3.5%，v1.2版。"],
    ),
    # Commas and enumeration marks are not sentence ends.
    (
        "苹果、香蕉，还有橙子。",
        ["苹果、香蕉，还有橙子。"],
    ),
]


@pytest.mark.parametrize(("text", "pieces"), CJK_SENTENCES)
def test_cjk_sentences(text: str, pieces: list[str]) -> None:
    assert split_sentences(text, WIDE) == pieces


def test_long_cjk_sentences_are_cut_after_commas_and_enumeration_marks() -> None:
    text = "一二三，四五六、七八九､十十一。"
    assert split_sentences(text, 4) == [
        "一二三，",
        "四五六、",
        "七八九､",
        "十十一。",
    ]


ENGINE_SENTENCES = [
    (
        "今天很好。你好吗？好！",
        ["今天很好。", "你好吗？", "好！"],
    ),
    (
        "今天很好。 你好吗？",
        ["今天很好。", "你好吗？"],
    ),
    ("走吧；好｡ok", ["走吧；", "好｡", "ok"]),
    (
        "\u201c你好。\u201d他说。",
        ["\u201c你好。\u201d", "他说。"],
    ),
    ("。。。", ["。。。"]),
    ("One. Two! Three? Four; five: six", ["One.", "Two!", "Three?", "Four;", "five:", "six"]),
]


@pytest.mark.parametrize(("text", "pieces"), ENGINE_SENTENCES)
def test_the_engines_splitter_needs_no_space_after_cjk_marks(text: str, pieces: list[str]) -> None:
    assert sentences.split_sentences(text) == pieces


_BEFORE = re.compile("(?<=[.!?;:。！？])\\s+")


def _split_before(text: str) -> list[str]:
    parts = [p.strip() for p in _BEFORE.split(text.strip())]
    return [p for p in parts if p] or [text.strip()]


_PIECES = [*"ab A.,;:!?\"')( \n\t\u2026一，、", "Dr.", "3.5", "\u00a0"]
_NO_CJK_MARKS = st.one_of(
    st.lists(st.sampled_from(_PIECES), max_size=60).map("".join), st.text()
).filter(lambda text: not set(text) & set("。！？；｡"))


@settings(max_examples=400, deadline=None)
@given(_NO_CJK_MARKS)
def test_the_engines_splitter_is_unchanged_for_text_without_cjk_marks(text: str) -> None:
    assert sentences.split_sentences(text) == _split_before(text)
