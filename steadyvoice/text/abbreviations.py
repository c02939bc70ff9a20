"""Rules for common abbreviations.

espeak-ng (Piper's phonemizer) ends a sentence at the full stop in "Dr. Smith", "Mr. Jones" and
"St. Louis", pausing in the middle of a name; written out, the name is read in one breath and a
sentence splitter has no full stop to misread.
"""

from __future__ import annotations

import re

from steadyvoice.text.rules import (
    NOT_AFTER_LETTER,
    NOT_BEFORE_LETTER,
    keep_full_stop,
    rule,
)

_TITLES = {"Mr": "Mister", "Mrs": "Missus", "Ms": "Miz", "Prof": "Professor", "Mt": "Mount"}
# abbreviation: (before a name, after a street name)
_PLACES = {"Dr": ("Doctor", "Drive"), "St": ("Saint", "Street")}
_AFTER_NAMES = {"Jr": "Junior", "Sr": "Senior"}
_PHRASES = {"e": "for example", "i": "that is"}

_CAPITALIZED = re.compile(r"[ \t]+[A-Z]")
# The two words before an abbreviation: "on Main St." -> ("on", "Main").
_PREVIOUS = re.compile(r"(?:(?P<before>\S+)[ \t]+|^)(?P<word>\S+)[ \t]+\Z")
_STREET_NAME = re.compile(r"[A-Z][\w'\u2019-]*|[0-9]+(?:st|nd|rd|th)?")
_LOOK_BACK = 80


def _previous(match: re.Match[str]) -> tuple[str | None, str | None]:
    window = match.string[max(0, match.start() - _LOOK_BACK) : match.start()]
    found = _PREVIOUS.search(window)
    if found is None:
        return None, None
    return found["before"], found["word"]


def _after_street_name(match: re.Match[str]) -> bool:
    """``Main St.``, ``5th St.``, ``Elm Dr.``: the word before names a street.

    A capitalized word counts only mid-sentence ("on Main St."), not as the first word of a
    sentence ("Visit St. Louis").
    """
    before, word = _previous(match)
    if word is None or _STREET_NAME.fullmatch(word) is None:
        return False
    if word[0].isdigit():
        return True
    return before is not None and not before.endswith((".", "!", "?", ":", ";"))


def _title(match: re.Match[str]) -> str:
    return _TITLES[match["a"]]


def _place(match: re.Match[str]) -> str | None:
    before_name, after_street = _PLACES[match["a"]]
    if _after_street_name(match):
        return keep_full_stop(match, after_street)
    name_follows = _CAPITALIZED.match(match.string, match.end()) is not None
    if name_follows or (match["dot"] and match["a"] == "Dr"):
        return before_name
    if match["dot"]:
        return keep_full_stop(match, after_street)
    return None


def _after_name(match: re.Match[str]) -> str | None:
    _, word = _previous(match)
    if word is None or not word[0].isupper():
        return None
    return keep_full_stop(match, _AFTER_NAMES[match["a"]])


def _phrase(match: re.Match[str]) -> str:
    written = match.group()
    spoken = _PHRASES[written[0].lower()]
    return spoken.capitalize() if written[0].isupper() else spoken


RULES = (
    rule(
        "title",
        rf"{NOT_AFTER_LETTER}(?P<a>Mrs|Mr|Ms|Prof|Mt)(?:\.|(?=[ \t]+[A-Z]))",
        _title,
    ),
    rule("place", rf"{NOT_AFTER_LETTER}(?P<a>Dr|St)(?P<dot>\.)?{NOT_BEFORE_LETTER}", _place),
    rule("after_name", rf"{NOT_AFTER_LETTER}(?P<a>Jr|Sr)\.?{NOT_BEFORE_LETTER}", _after_name),
    rule(
        "etc",
        rf"{NOT_AFTER_LETTER}(?P<e>[Ee])tc\.?{NOT_BEFORE_LETTER}",
        lambda m: keep_full_stop(m, f"{m['e']}t cetera"),
    ),
    rule("versus", rf"{NOT_AFTER_LETTER}vs\.?{NOT_BEFORE_LETTER}", lambda _: "versus"),
    rule(
        "phrase",
        rf"{NOT_AFTER_LETTER}(?:[Ee]\.[ \t]?g|[Ii]\.[ \t]?e)\.?{NOT_BEFORE_LETTER}",
        _phrase,
    ),
    rule("approx", rf"{NOT_AFTER_LETTER}approx\.?{NOT_BEFORE_LETTER}", lambda _: "approximately"),
    rule(
        "number_sign",
        rf"{NOT_AFTER_LETTER}(?P<n>[Nn])[Oo]\.[ \t]*(?=[0-9])",
        lambda m: "Number " if m["n"] == "N" else "number ",
    ),
    rule("hash", r"(?<![0-9A-Za-z#&])#[ \t]?(?=[0-9])", lambda _: "number "),
)
