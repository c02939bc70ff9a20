"""The leading clause rule: where a first sentence is cut so its first words can be streamed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steadyvoice.text.split import (
    CLAUSE_MAX_WORDS,
    ends_clause,
    lead_clause,
    split_lead_clause,
)

# Seven words and more are cut; six and fewer are not.
LONG = "one two three four five six seven eight nine ten eleven twelve"


@pytest.mark.parametrize(
    ("sentence", "parts"),
    [
        # The last comma, semicolon or colon within the first three words.
        (
            "Well, you know, the report is late again this month.",
            ["Well, you know,", "the report is late again this month."],
        ),
        (
            "Yes; the report is late again this month as usual.",
            ["Yes;", "the report is late again this month as usual."],
        ),
        (
            "Note: the report is late again this month as usual.",
            ["Note:", "the report is late again this month as usual."],
        ),
        (
            "First, second, third, fourth, fifth and sixth are late.",
            ["First, second, third,", "fourth, fifth and sixth are late."],
        ),
        # No mark within the first three words: cut right after the third.
        (
            "The quarterly report from the northern office is late again.",
            ["The quarterly report", "from the northern office is late again."],
        ),
        # A mark after the third word does not count.
        (
            "The quarterly report, as usual, is late again this month.",
            ["The quarterly report,", "as usual, is late again this month."],
        ),
        (
            "The quarterly report from the office, as usual, is late again.",
            ["The quarterly report", "from the office, as usual, is late again."],
        ),
        # Closing quotes and brackets after the mark still end the clause.
        (
            'He said "yes," and then he left the room at once.',
            ['He said "yes,"', "and then he left the room at once."],
        ),
        (
            "Late (very late), and nobody had eaten anything at all.",
            ["Late (very late),", "and nobody had eaten anything at all."],
        ),
        # Digits with commas are one word that does not end in a mark.
        (
            "About 3,000 people came to the show on the first night.",
            ["About 3,000 people", "came to the show on the first night."],
        ),
    ],
)
def test_where_a_long_first_sentence_is_cut(sentence: str, parts: list[str]) -> None:
    assert split_lead_clause(sentence) == parts


@pytest.mark.parametrize(
    "sentence",
    [
        "Hello.",
        "Hello",
        "Good morning, this is your summary.",  # short: not cut, commas or not
        "one two three four five six",
        "",
    ],
)
def test_short_sentences_and_single_words_are_not_cut(sentence: str) -> None:
    assert split_lead_clause(sentence) == [sentence]


def test_the_word_cap() -> None:
    words = LONG.split()
    assert len(words) > 2 * CLAUSE_MAX_WORDS
    assert lead_clause(words) == (CLAUSE_MAX_WORDS, False)
    assert lead_clause(words[: 2 * CLAUSE_MAX_WORDS]) == (0, False)
    assert lead_clause(words[: 2 * CLAUSE_MAX_WORDS + 1]) == (CLAUSE_MAX_WORDS, False)
    assert lead_clause(words, max_words=5) == (5, False)
    assert lead_clause(words, max_words=6) == (0, False), "twelve words are not more than 12"
    marked = [*words[:2], "three,", *words[3:]]
    assert lead_clause(marked) == (3, True)
    with pytest.raises(ValueError, match="max_words"):
        lead_clause(words, max_words=0)


def test_cjk_text_is_cut_at_its_own_punctuation_or_by_characters() -> None:
    # Each CJK character counts as a word; the ideographic comma and colon are marks.
    assert split_lead_clause(
        "\u4eca\u5929\uff0c\u6211\u4eec\u53bb\u516c\u56ed\u6563\u6b65\u5427\u3002"
    ) == [
        "\u4eca\u5929\uff0c",
        "\u6211\u4eec\u53bb\u516c\u56ed\u6563\u6b65\u5427\u3002",
    ]
    assert split_lead_clause("\u597d\u3001\u6211\u4eec\u53bb\u516c\u56ed\u6563\u6b65\u5427") == [
        "\u597d\u3001",
        "\u6211\u4eec\u53bb\u516c\u56ed\u6563\u6b65\u5427",
    ]
    no_marks = "\u6211\u4eec\u660e\u5929\u53bb\u516c\u56ed\u6563\u6b65\u5427"
    assert split_lead_clause(no_marks) == [no_marks[:3], no_marks[3:]]
    assert split_lead_clause("\u4f60\u597d\u3002") == ["\u4f60\u597d\u3002"]


@pytest.mark.parametrize(
    ("word", "ends"),
    [
        ("well,", True),
        ("so;", True),
        ("note:", True),
        ('"yes,"', True),
        ("late),", True),
        ("\u4eca\u5929\uff0c", True),
        ("\u597d\u3001", True),
        ("\u6ce8\uff1a", True),
        ("3,000", False),
        ("end.", False),
        ("why?", False),
        (",", True),
        (")", False),
        ("", False),
    ],
)
def test_clause_marks(word: str, ends: bool) -> None:
    assert ends_clause(word) is ends


@given(st.text(alphabet=st.sampled_from(list("ab ,;:.\u4eca\u5929\uff0c\u3002\n")), max_size=80))
def test_the_parts_keep_every_character_in_order(sentence: str) -> None:
    parts = split_lead_clause(sentence)
    assert len(parts) in (1, 2)
    assert "".join("".join(parts).split()) == "".join(sentence.split())
    if len(parts) == 2:
        assert all(parts)
