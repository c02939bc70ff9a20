"""Numbers as words in other languages than English and Chinese, by num2words.

Only numbers: integers, numbers with thousands separators, decimals, and a minus sign before
them, each written the way the language writes it (``1.234,5`` in German, ``1,234.5`` in
Japanese). A number joined to another by ``.`` ``,`` ``:`` ``/`` or ``-`` in any other shape
(a date ``5.3.2024``, a time ``14:30``, a range ``10-20``, a version ``1.2.3``) is left as
written, for the voice's own phonemizer to read; so are dates, money and percent signs.

num2words spells whole numbers; the decimal and minus words are ours (``LANGUAGES``), because
num2words drops or garbles decimals and signs in several languages (``3.05`` is ``tre`` in
Italian, ``-5`` fails in Polish). As in English, a run of 7 or more digits with no separator,
or one that starts with ``0``, is an identifier and read digit by digit, and so is a number of
more than 15 digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.metadata import version

from num2words import num2words  # type: ignore[import-untyped]

# Our rules for these languages: raise when they change.
RULES = "1"

_MAX_WORD_DIGITS = 15
_DIGIT_RUN_DIGITS = 7


@dataclass(frozen=True)
class Style:
    """How a language writes and says a number's decimal mark and sign."""

    decimal_mark: str  # "," or "."
    point: str  # the word for the decimal mark
    minus: str
    spaced: bool = True  # whether words are separated by spaces


_COMMA = ".\u00a0\u202f"  # thousands separators where the decimal mark is a comma

LANGUAGES: dict[str, Style] = {
    "ca": Style(",", "coma", "menys"),
    "da": Style(",", "komma", "minus"),
    "de": Style(",", "Komma", "minus"),
    "es": Style(",", "coma", "menos"),
    "fi": Style(",", "pilkku", "miinus"),
    "fr": Style(",", "virgule", "moins"),
    "it": Style(",", "virgola", "meno"),
    "ja": Style(".", "\u70b9", "\u30de\u30a4\u30ca\u30b9", spaced=False),
    "ko": Style(".", "\uc810", "\ub9c8\uc774\ub108\uc2a4"),
    "nl": Style(",", "komma", "min"),
    "no": Style(",", "komma", "minus"),
    "pl": Style(",", "przecinek", "minus"),
    "pt": Style(",", "v\u00edrgula", "menos"),
    "ro": Style(",", "virgul\u0103", "minus"),
    "ru": Style(
        ",", "\u0437\u0430\u043f\u044f\u0442\u0430\u044f", "\u043c\u0438\u043d\u0443\u0441"
    ),
    "sv": Style(",", "komma", "minus"),
    "tr": Style(",", "virg\u00fcl", "eksi"),
    "uk": Style(",", "\u043a\u043e\u043c\u0430", "\u043c\u0456\u043d\u0443\u0441"),
}

# A number as written: digits, possibly joined by marks to more digits; the shape decides.
_NUMBER = re.compile(r"(?<![0-9])[0-9]+(?:[.,:/\-\u00a0\u202f'][0-9]+)*(?![0-9])")
# A minus sign: where no word, number or closing bracket comes just before.
_SIGN = re.compile(r"(?<![\w.,)\]\-\u2212])[-\u2212]")


@cache
def version_tag(language: str) -> str:
    """What a job records, e.g. ``de-1+num2words0.5.14``."""
    return f"{language}-{RULES}+num2words{version('num2words')}"


def normalize_numbers(text: str, language: str) -> str:
    """``text`` with its numbers written as words in ``language`` (one of ``LANGUAGES``)."""
    style = LANGUAGES[language]
    shapes = _shapes(style.decimal_mark)
    pieces: list[str] = []
    consumed = 0
    for found in _NUMBER.finditer(text):
        said = _read(found.group(), shapes, style, language)
        if said is None:
            continue
        start = found.start()
        if start > consumed and _SIGN.match(text, start - 1):
            start -= 1
            said = f"{style.minus}{' ' if style.spaced else ''}{said}"
        pieces.append(text[consumed:start])
        pieces.append(_spaced(said, text[start - 1 : start], text[found.end() : found.end() + 1]))
        consumed = found.end()
    pieces.append(text[consumed:])
    return "".join(pieces)


@cache
def _shapes(decimal_mark: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(grouped, decimal): ``1.234.567,89`` and ``3,5`` where the decimal mark is a comma."""
    groups = re.escape(_COMMA if decimal_mark == "," else ",")
    mark = re.escape(decimal_mark)
    grouped = re.compile(f"[0-9]{{1,3}}(?:[{groups}][0-9]{{3}})+(?:{mark}[0-9]+)?")
    return grouped, re.compile(f"[0-9]+{mark}[0-9]+")


def _read(
    written: str, shapes: tuple[re.Pattern[str], re.Pattern[str]], style: Style, language: str
) -> str | None:
    grouped, decimal = shapes
    if written.isdigit():
        identifier = len(written) >= _DIGIT_RUN_DIGITS or (len(written) > 1 and written[0] == "0")
        return _digits(written, style, language) if identifier else _count(written, language)
    if not (grouped.fullmatch(written) or decimal.fullmatch(written)):
        return None
    whole, _, fraction = written.partition(style.decimal_mark)
    whole = re.sub("[^0-9]", "", whole)
    said = _count(whole, language) if len(whole) <= _MAX_WORD_DIGITS else None
    if said is None:
        said = _digits(whole, style, language)
    if fraction:
        gap = " " if style.spaced else ""
        said = f"{said}{gap}{style.point}{gap}{_digits(fraction, style, language)}"
    return said


def _count(digits: str, language: str) -> str:
    return _cardinal(int(digits), language)


def _digits(digits: str, style: Style, language: str) -> str:
    gap = " " if style.spaced else ""
    return gap.join(_cardinal(int(digit), language) for digit in digits)


@lru_cache(maxsize=4096)
def _cardinal(value: int, language: str) -> str:
    said: str = num2words(value, lang=language)
    return said


def _spaced(words: str, before: str, after: str) -> str:
    """Keep words apart from letters they were written against (``5kg``)."""
    if before.isalpha() and not _unspaced(before):
        words = f" {words}"
    if after.isalpha() and not _unspaced(after):
        words = f"{words} "
    return words


def _unspaced(char: str) -> bool:
    """Scripts written without spaces between words (kana, kanji, hangul syllables aside)."""
    return "\u3040" <= char <= "\u9fff"
