"""Normalization by language: which normalizer a voice's language gets, what it records, and
what the number words are in the languages num2words covers."""

# Chinese, Japanese and Korean cases are written as such: full-width punctuation is meant.
# ruff: noqa: RUF001

from __future__ import annotations

import re
import threading
from importlib.metadata import version

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steadyvoice.text import (
    NORMALIZATION_VERSION,
    chinese,
    normalize,
    normalizer_for,
    text_language,
)
from steadyvoice.text.chinese import normalize_chinese
from steadyvoice.text.numerals import LANGUAGES, normalize_numbers

NUM2WORDS = f"num2words{version('num2words')}"
WETEXT = f"wetext{version('wetext')}"


def test_each_language_records_its_normalizer_and_the_library_release() -> None:
    assert normalize("I have 42 apples.", "en") == ("I have forty-two apples.", "en-1")
    assert NORMALIZATION_VERSION == "en-1"
    assert normalize("共42元", "zh") == ("共四十二元", f"zh-1+{WETEXT}")
    assert normalize("Ich habe 42 \u00c4pfel.", "de") == (
        "Ich habe zweiundvierzig \u00c4pfel.",
        f"de-1+{NUM2WORDS}",
    )
    # Cantonese is written in the same characters: the Chinese normalizer.
    assert normalizer_for("yue") is not None
    assert normalizer_for("yue").version == f"zh-1+{WETEXT}"  # type: ignore[union-attr]


@pytest.mark.parametrize("language", ["el", "hi", "sw", "xx", "*"])
def test_a_language_without_a_normalizer_passes_unchanged_and_records_none(
    language: str,
) -> None:
    text = "\u0388\u03c7\u03c9 5 \u03bc\u03ae\u03bb\u03b1, 3.5 and $5."
    assert normalizer_for(language) is None
    assert normalize(text, language) == (text, "none")


def test_german_gets_german_number_words_not_english_ones() -> None:
    spoken, recorded = normalize("Es sind 21 Grad und 1.234,5 Liter.", "de")
    assert spoken == (
        "Es sind einundzwanzig Grad und eintausendzweihundertvierunddrei\u00dfig Komma f\u00fcnf "
        "Liter."
    )
    assert recorded.startswith("de-")
    english, _ = normalize("Es sind 21 Grad.", "en")
    assert "twenty-one" in english and "twenty" not in spoken


GERMAN = [
    ("42", "zweiundvierzig"),
    ("1.000.000", "eine Million"),
    ("1\u00a0234", "eintausendzweihundertvierunddrei\u00dfig"),
    ("3,05", "drei Komma null f\u00fcnf"),
    ("-3 Grad", "minus drei Grad"),
    ("\u22123,5", "minus drei Komma f\u00fcnf"),
    ("x-5", "x-f\u00fcnf"),
    ("5kg", "f\u00fcnf kg"),
    ("Seite5", "Seite f\u00fcnf"),
    # Identifiers: 7 or more digits, or a leading zero, digit by digit.
    ("0301234", "null drei null eins zwei drei vier"),
    ("007", "null null sieben"),
    # Shapes that are not a plain number are left for the voice's phonemizer.
    ("am 5.3.2024 um 14:30", "am 5.3.2024 um 14:30"),
    ("Seiten 10-20, Version 1.2.3, 3.5", "Seiten 10-20, Version 1.2.3, 3.5"),
    ("Keine Zahlen hier.", "Keine Zahlen hier."),
    # More than 15 digits: digit by digit, so the work stays bounded.
    (
        "1.000.000.000.000.000",
        "eins null null null null null null null null null null null null null null null",
    ),
]


@pytest.mark.parametrize(("written", "spoken"), GERMAN)
def test_german_numbers(written: str, spoken: str) -> None:
    assert normalize_numbers(written, "de") == spoken


@pytest.mark.parametrize(
    ("language", "written", "spoken"),
    [
        ("fr", "Il y a 21 ans, 3,5 kilos.", "Il y a vingt et un ans, trois virgule cinq kilos."),
        ("es", "Tengo 21 a\u00f1os.", "Tengo veintiuno a\u00f1os."),
        ("it", "Costa 3,05 euro.", "Costa tre virgola zero cinque euro."),
        (
            "ru",
            "\u0412 21 \u0433\u043e\u0434.",
            "\u0412 \u0434\u0432\u0430\u0434\u0446\u0430\u0442\u044c "
            "\u043e\u0434\u0438\u043d \u0433\u043e\u0434.",
        ),
        # Where the decimal mark is a full stop, the comma groups thousands.
        (
            "ja",
            "価格は1,500円、3.5%。",
            "価格は千五百円、三点五%。",
        ),
        ("ko", "1500원", "천오백 원"),
    ],
)
def test_other_languages(language: str, written: str, spoken: str) -> None:
    assert normalize_numbers(written, language) == spoken


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_listed_language_spells_every_kind_of_number(language: str) -> None:
    mark = LANGUAGES[language].decimal_mark
    written = f"7 -12 3{mark}25 0123 12345678 1000"
    spoken = normalize_numbers(written, language)
    assert not any(char.isdigit() for char in spoken), spoken
    assert normalize_numbers(spoken, language) == spoken


COSYVOICE3 = ("zh", "en", "ja", "ko", "yue", "de", "es", "fr", "it", "ru")


@pytest.mark.parametrize(
    ("languages", "text", "chosen"),
    [
        (("de",), "你好 42", "de"),  # one language: the voice's, whatever the text
        (("*",), "Hello 42", "en"),
        (("*",), "你好 42", "zh"),
        (("*",), "こんにちは世界 42", "ja"),
        (("*",), "안녕 42", "ko"),
        (("zh", "en", "ja", "ko", "yue"), "今日は 42", "ja"),
        (("zh", "en", "ja", "ko", "yue"), "Hello 42", "en"),
        (("zh", "en", "ja", "ko", "yue"), "\u041f\u0440\u0438\u0432\u0435\u0442 42", "en"),
        (("zh", "yue"), "Hello 42", "zh"),  # no English: the voice's first language
        (("de", "fr"), "你好 42", "de"),
        # Latin or Cyrillic text for a voice of several languages: the identifier's, when sure.
        (COSYVOICE3, "Ich habe 3 Katzen und zwei Hunde zu Hause.", "de"),
        (COSYVOICE3, "У меня 3 кошки и две собаки дома.", "ru"),
        (COSYVOICE3, "I have 3 cats and two dogs at home.", "en"),
        (("*",), "J'ai 3 chats et deux chiens à la maison.", "fr"),
        (COSYVOICE3, "Hallo 3", "en"),  # too short to be sure: English
    ],
)
def test_the_text_language_of_a_voice(languages: tuple[str, ...], text: str, chosen: str) -> None:
    assert text_language(languages, text) == chosen


def test_the_chinese_normalizer_leaves_text_with_nothing_to_read_alone() -> None:
    text = "您好，欢迎。 Hello, world!  "
    assert normalize_chinese(text) is text


def test_the_chinese_normalizer_is_safe_to_call_from_many_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Four callers at once, whatever the core count (past the bound they are told to retry).
    monkeypatch.setattr(chinese, "_CALLERS", threading.BoundedSemaphore(4))
    texts = [f"账单金额为{i},234.5{i}元，2024年{i + 1}月。" for i in range(8)]
    expected = [normalize_chinese(text) for text in texts]
    results: dict[int, list[str]] = {}

    def run(n: int) -> None:
        results[n] = [normalize_chinese(text) for text in texts * 5]

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(results[n] == expected * 5 for n in range(4))


_CHINESE_PIECES = [
    *"0123456789.,:-/%+¥￥$元年月日点号万 \n，。、；aX你好℃~",
    "1,234",
    "138 1234 5678",
]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_CHINESE_PIECES), max_size=120).map("".join))
def test_the_chinese_normalizer_speaks_every_ascii_digit(text: str) -> None:
    assert not re.search("[0-9]", normalize_chinese(text))


def test_long_chinese_text_without_punctuation_is_normalized_in_bounded_pieces() -> None:
    # One 5,000-character piece would take wetext seconds; cut in pieces of at most 200
    # characters it takes about 0.1 ms a character (the test's timeout guards the rest).
    for text in ("1," * 2500, "1.1." * 1250, "a1 " * 1666):
        spoken = normalize_chinese(text)
        assert not re.search("[0-9]", spoken)
