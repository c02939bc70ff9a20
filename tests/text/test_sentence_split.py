"""Sentence splitting for streaming: where it cuts, where it must not, and what it keeps."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steadyvoice.text import normalize_english, split_sentences

WIDE = 1_000

SENTENCES = [
    ("One. Two! Three? Four; five", ["One.", "Two!", "Three?", "Four;", "five"]),
    ("First line\nsecond line\r\n\nthird", ["First line", "second line", "third"]),
    ('He said "Stop." Then left.', ['He said "Stop."', "Then left."]),
    ("Wait... What?! Fine.", ["Wait...", "What?!", "Fine."]),
    (
        "\u4eca\u5929\u5f88\u597d\u3002\u4f60\u597d\u5417\uff1f\u597d\uff01",
        [
            "\u4eca\u5929\u5f88\u597d\u3002",
            "\u4f60\u597d\u5417\uff1f",
            "\u597d\uff01",
        ],
    ),
    # Never inside decimals or after abbreviations and initials.
    ("It is 3.5 metres. Next.", ["It is 3.5 metres.", "Next."]),
    ("Dr. Smith met Mr. Jones. Then they left.", ["Dr. Smith met Mr. Jones.", "Then they left."]),
    ("Fruit, e.g. apples, i.e. food. Done.", ["Fruit, e.g. apples, i.e. food.", "Done."]),
    ("J. R. R. Tolkien wrote it. Yes.", ["J. R. R. Tolkien wrote it.", "Yes."]),
    ("See No. 5 and St. Louis. Go.", ["See No. 5 and St. Louis.", "Go."]),
    ("It was at 9 a.m. and late. Then.", ["It was at 9 a.m. and late.", "Then."]),
    # "no." and "fig." are words unless a number follows.
    ("I said no. Then I went.", ["I said no.", "Then I went."]),
    ("I ate a fig. It was good.", ["I ate a fig.", "It was good."]),
    # Whitespace runs collapse; blank text gives nothing.
    ("  lots   of\tspace.  Here ", ["lots of space.", "Here"]),
    ("", []),
    (" \n\t ", []),
    ("...", ["..."]),
]


@pytest.mark.parametrize(("text", "pieces"), SENTENCES)
def test_sentences(text: str, pieces: list[str]) -> None:
    assert split_sentences(text, WIDE) == pieces


def test_long_sentences_are_cut_at_commas_then_spaces() -> None:
    sentence = "The first clause is here, the second one follows, and the third ends it."
    assert split_sentences(sentence, 30) == [
        "The first clause is here,",
        "the second one follows,",
        "and the third ends it.",
    ]
    assert split_sentences("alpha beta gamma delta epsilon", 11) == [
        "alpha beta",
        "gamma delta",
        "epsilon",
    ]


def test_clauses_that_fit_together_stay_together() -> None:
    assert split_sentences("a, b, c, d, e.", 8) == ["a, b, c,", "d, e."]


def test_a_word_longer_than_the_limit_is_kept_whole() -> None:
    long_word = "x" * 50
    assert split_sentences(f"short {long_word} end", 10) == ["short", long_word, "end"]


def test_cjk_clauses_cut_at_cjk_commas() -> None:
    text = "\u4e00\u4e8c\u4e09\uff0c\u56db\u4e94\u516d\u3001\u4e03\u516b\u4e5d\u3002"
    assert split_sentences(text, 4) == [
        "\u4e00\u4e8c\u4e09\uff0c",
        "\u56db\u4e94\u516d\u3001",
        "\u4e03\u516b\u4e5d\u3002",
    ]


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        split_sentences("text", 0)


def test_normalized_text_splits_cleanly() -> None:
    text = "Dr. Smith paid $3.50 at 9 a.m. on 2026-11-25. Mr. Jones paid 12%. Done!"
    assert split_sentences(normalize_english(text), WIDE) == [
        "Doctor Smith paid three dollars and fifty cents at nine AM on November twenty-fifth, "
        "twenty twenty-six.",
        "Mister Jones paid twelve percent.",
        "Done!",
    ]


def test_many_punctuation_marks_split_quickly() -> None:
    # Each run of marks is looked at once; a quadratic scan would take many seconds here.
    assert split_sentences("!" * 200_000, 100) == ["!" * 200_000]


_PIECES = [
    "word",
    "Word",
    "a",
    "I",
    "Dr.",
    "e.g.",
    "3.5",
    " ",
    " ",
    "  ",
    "\n",
    "\t",
    ".",
    ",",
    ";",
    "!",
    "?",
    ":",
    "...",
    '"',
    ")",
    "\u4e00",
    "\u3002",
    "\uff0c",
    "\u3001",
    "x" * 12,
    "no.",
]
_TEXT = st.one_of(st.lists(st.sampled_from(_PIECES), max_size=60).map("".join), st.text())
_MANY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _squeezed(text: str) -> str:
    return "".join(text.split())


@_MANY
@given(_TEXT, st.integers(min_value=1, max_value=40))
def test_pieces_keep_every_character_in_order(text: str, max_chars: int) -> None:
    pieces = split_sentences(text, max_chars)
    assert _squeezed(" ".join(pieces)) == _squeezed(text)


@_MANY
@given(_TEXT, st.integers(min_value=1, max_value=40))
def test_pieces_are_not_empty_and_fit_unless_one_word(text: str, max_chars: int) -> None:
    for piece in split_sentences(text, max_chars):
        assert piece
        assert piece == piece.strip()
        assert len(piece) <= max_chars or " " not in piece


@_MANY
@given(
    st.lists(st.sampled_from(["word", "Word", "Dr.", "3.5", ",", ".", "!", "x" * 9]), max_size=40)
)
def test_latin_words_are_never_cut(words: list[str]) -> None:
    text = " ".join(words)
    pieces = split_sentences(text, 12)
    assert " ".join(pieces).split() == text.split()
