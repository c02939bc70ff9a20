"""English text normalization: numbers, money, dates, times and abbreviations as spoken words.

Every rule is a regular expression; all of them are tried in one left-to-right scan, the first
rule listed winning where two match at the same place. The rules are documented in docs/text.md.
"""

from __future__ import annotations

import re
import unicodedata

from steadyvoice.text import abbreviations, dates, numbers
from steadyvoice.text.rules import Rule

# Recorded on every job with the text it produced. Any change to what normalize_english returns
# for some input must raise it (tests/text/test_normalize_golden.py pins a corpus to it).
NORMALIZATION_VERSION = "en-1"

# Where two rules can match at the same place, the more specific comes first: dates and times
# before ranges and decimals, money and percentages before plain numbers.
_RULES: tuple[Rule, ...] = (*dates.RULES, *numbers.RULES, *abbreviations.RULES)

_NAMED_GROUP = re.compile(r"\(\?P<\w+>")
_SCAN = re.compile(
    "|".join(
        f"(?P<r{i}>{_NAMED_GROUP.sub('(?:', r.pattern.pattern)})" for i, r in enumerate(_RULES)
    )
)
_OTHER_DIGIT = re.compile(r"(?![0-9])\d")
_MAX_PASSES = 8


def normalize_english(text: str) -> str:
    """Write numbers, money, dates, times and common abbreviations as the words a reader says.

    Text without digits, currency signs or the listed abbreviations comes back unchanged, and
    the result is a fixed point: ``normalize_english(normalize_english(t))`` equals
    ``normalize_english(t)``. Every digit in the result is gone, spelled out.
    """
    if not text.isascii():
        text = _OTHER_DIGIT.sub(lambda m: str(unicodedata.decimal(m.group())), text)
    # Some abbreviations are read by the words around them ("Main St." is a street), and a first
    # pass can change those words ("1A Dr" -> "one A Dr"), so passes repeat until nothing
    # changes. Each pass after the first only writes out abbreviations, one fewer each time at
    # least, so this ends; in practice the second pass changes nothing.
    for _ in range(_MAX_PASSES):
        spoken = _one_pass(text)
        if spoken == text:
            break
        text = spoken
    return text


def _one_pass(text: str) -> str:
    pieces: list[str] = []
    consumed = 0
    tail = ""  # the last character written so far
    for found in _SCAN.finditer(text):
        start, end = found.span()
        if start > consumed:
            pieces.append(text[consumed:start])
            tail = text[start - 1]
        said = _read(found)
        piece = found.group() if said is None else _spaced(said, tail, text[end : end + 1])
        pieces.append(piece)
        tail = piece[-1:] or tail
        consumed = end
    pieces.append(text[consumed:])
    return "".join(pieces)


def _read(found: re.Match[str]) -> str | None:
    assert found.lastgroup is not None
    rule = _RULES[int(found.lastgroup[1:])]
    match = rule.pattern.match(found.string, found.start())
    assert match is not None and match.end() == found.end(), rule.name
    return rule.read(match)


def _spaced(words: str, before: str, after: str) -> str:
    """Keep spoken words apart from the letters they were written against ("MP3", "5kg")."""
    if words[:1].isalnum() and before.isalnum():
        words = f" {words}"
    if words[-1:].isalnum() and after.isalpha():
        words = f"{words} "
    return words
