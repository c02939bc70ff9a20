"""One normalization rule: a pattern, and how to read aloud what it matched."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from steadyvoice.text import words

# A reader returns the spoken form of its match, or None to leave the match as written.
Reader = Callable[[re.Match[str]], str | None]

# Pattern fragments shared by the rules.
NOT_AFTER_ALNUM = r"(?<![0-9A-Za-z])"
# Abbreviations may follow digits and punctuation, not letters: "5Mr." must read the same in the
# second pass, where the 5 has become "five ".
NOT_AFTER_LETTER = r"(?<![^\W\d_])"
NOT_BEFORE_LETTER = r"(?![^\W\d_])"
# A minus sign: only where a word, a number or a closing bracket does not come just before, so
# the hyphens in "COVID-19" and "10-20" are not read as "minus".
SIGN = r"(?:(?<![0-9A-Za-z.,)\]\-\u2212])[-\u2212](?=[0-9$\u00a3\u20ac]))"
# An integer as written: with thousands separators ("1,234,567"), or a plain run of digits.
INTEGER = r"(?:[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[0-9]+)"

_FOLLOWING = re.compile(r"[ \t]*[\"'\u201c\u2018(\[]*(.?)", re.DOTALL)


@dataclass(frozen=True)
class Rule:
    """A named pattern and the reader that turns each match into words."""

    name: str
    pattern: re.Pattern[str]
    read: Reader


def rule(name: str, pattern: str, read: Reader) -> Rule:
    return Rule(name, re.compile(pattern), read)


def ends_sentence(text: str, position: int) -> bool:
    """Whether a full stop just before ``position`` ends a sentence: nothing, a line break or a
    capital letter comes next."""
    following = _FOLLOWING.match(text, position)
    after = following.group(1) if following else ""
    return after in ("", "\n", "\r") or after.isupper()


def keep_full_stop(match: re.Match[str], spoken: str) -> str:
    """``spoken`` plus the full stop the match swallowed, when that stop also ends a sentence
    ("... etc. Then" keeps it, "a.m. tomorrow" does not)."""
    if match.group().endswith(".") and ends_sentence(match.string, match.end()):
        return f"{spoken}."
    return spoken


def integer(written: str) -> str:
    """An integer as written: grouped ("1,999") is always a count, a plain run follows
    :func:`words.run` (years, digit-by-digit identifiers)."""
    return words.count(written) if "," in written else words.run(written)


def amount(whole: str, fraction: str | None) -> str:
    """A quantity (money, percent): a count, or a decimal; never a year."""
    return words.decimal(whole, fraction) if fraction else words.count(whole)
