"""Rules for numbers: money, percentages, ordinals, decades, phone numbers, ranges, decimals."""

from __future__ import annotations

import re

from steadyvoice.text import words
from steadyvoice.text.rules import (
    INTEGER,
    NOT_AFTER_ALNUM,
    NOT_BEFORE_LETTER,
    SIGN,
    amount,
    integer,
    rule,
)

# symbol: (one, many, one hundredth, many hundredths)
_CURRENCIES = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "\u00a3": ("pound", "pounds", "penny", "pence"),
    "\u20ac": ("euro", "euros", "cent", "cents"),
}
_SCALES = {
    "thousand": "thousand",
    "million": "million",
    "billion": "billion",
    "trillion": "trillion",
    "k": "thousand",
    "m": "million",
    "mn": "million",
    "b": "billion",
    "bn": "billion",
    "tn": "trillion",
}
_SYMBOL = "[$\u00a3\u20ac]"
_SCALE_WORD = r"(?i:thousand|million|billion|trillion)"
_SCALE_LETTERS = r"(?:k|K|m|M|mn|bn|Bn|BN|b|B|tn)"


def _money(match: re.Match[str]) -> str:
    groups = match.groupdict()
    scale = groups.get("scale") or groups.get("scale_letters")
    sign = "minus " if match["neg"] else ""
    return sign + _say_money(match["sym"], match["int"], match["frac"], scale)


def _say_money(symbol: str, whole: str, fraction: str | None, scale: str | None) -> str:
    unit, units, cent, cents = _CURRENCIES[symbol]
    if scale:
        return f"{amount(whole, fraction)} {_SCALES[scale.lower()]} {units}"
    if fraction is not None and len(fraction) > 2:
        return f"{words.decimal(whole, fraction)} {units}"
    significant = whole.replace(",", "").lstrip("0")
    hundredths = int(fraction.ljust(2, "0")) if fraction else 0
    parts = []
    if significant or not hundredths:
        parts.append(f"{words.count(whole)} {unit if significant == '1' else units}")
    if hundredths:
        parts.append(f"{words.cardinal(hundredths)} {cent if hundredths == 1 else cents}")
    return " and ".join(parts)


def _percent(match: re.Match[str]) -> str:
    sign = "minus " if match["neg"] else ""
    return f"{sign}{amount(match['int'], match['frac'])} percent"


def _ordinal(match: re.Match[str]) -> str:
    significant = match["int"].replace(",", "").lstrip("0")
    if len(significant) > words.MAX_WORD_DIGITS:
        return f"{words.digits(significant)} {match['suf'].lower()}"
    return words.ordinal(int(significant or "0"))


def _decade(match: re.Match[str]) -> str:
    decade = match["y"]
    spoken = words.cardinal(int(decade)) if len(decade) == 2 else words.run(decade)
    return words.plural(spoken)


def _phone(match: re.Match[str]) -> str:
    written = match.group()
    groups = ", ".join(words.digits(group) for group in re.findall("[0-9]+", written))
    return f"plus {groups}" if written.startswith("+") else groups


def _dotted(match: re.Match[str]) -> str:
    return " dot ".join(words.run(part) for part in match.group().split("."))


def _range(match: re.Match[str]) -> str:
    return f"{integer(match['a'])} to {integer(match['b'])}"


def _power(match: re.Match[str]) -> str:
    exponent = ("minus " if match["neg"] else "") + words.count(match["b"])
    return f"{integer(match['a'])} to the power of {exponent}"


def _decimal(match: re.Match[str]) -> str:
    sign = "minus " if match["neg"] else ""
    return sign + words.decimal(match["int"] or "", match["frac"])


def _number(match: re.Match[str]) -> str:
    if not match["neg"]:
        return integer(match["int"])
    written = match["int"]
    if "," in written or not written.startswith("0"):
        return f"minus {words.count(written)}"
    return f"minus {words.digits(written)}"


_MONEY_AFTER_SYMBOL = (
    rf"(?P<neg>{SIGN})?(?P<sym>{_SYMBOL})[ \t]?(?P<int>{INTEGER})(?:\.(?P<frac>[0-9]+))?"
    rf"(?:[ \t]?(?P<scale>{_SCALE_WORD}){NOT_BEFORE_LETTER}"
    rf"|(?P<scale_letters>{_SCALE_LETTERS}){NOT_BEFORE_LETTER})?"
)
_MONEY_BEFORE_SYMBOL = (
    rf"(?P<neg>{SIGN})?(?P<int>{INTEGER})(?:\.(?P<frac>[0-9]+))?"
    rf"(?:[ \t]?(?P<scale>{_SCALE_WORD}))?[ \t]?(?P<sym>{_SYMBOL})(?![ \t]?[0-9])"
)
_PHONES = (
    # +44 20 7946 0958, +1-555-123-4567: a plus, then at least seven digits in groups.
    r"\+[0-9](?:[ .\-]?[0-9]){6,19}(?![0-9])",
    # (555) 123-4567, 555-123-4567, 555.123.4567, 555 123 4567, +1 (555) 123-4567
    rf"{NOT_AFTER_ALNUM}(?:\+[0-9]{{1,3}}[ .\-]?)?(?:\([0-9]{{3}}\)[ \t]?|[0-9]{{3}}[ .\-])"
    r"[0-9]{3}[ .\-][0-9]{4}(?![0-9])",
    # 555-1234: a local number (exchanges start 2-9, so "100-2000" stays a range)
    rf"{NOT_AFTER_ALNUM}[2-9][0-9]{{2}}-[0-9]{{4}}(?![0-9]|[\-.,][0-9])",
)


RULES = (
    rule("money", _MONEY_AFTER_SYMBOL, _money),
    rule("money_symbol_after", _MONEY_BEFORE_SYMBOL, _money),
    rule("percent", rf"(?P<neg>{SIGN})?(?P<int>{INTEGER})(?:\.(?P<frac>[0-9]+))?[ \t]?%", _percent),
    rule("ordinal", rf"(?P<int>{INTEGER})(?P<suf>(?i:st|nd|rd|th)){NOT_BEFORE_LETTER}", _ordinal),
    rule(
        "decade",
        rf"{NOT_AFTER_ALNUM}['\u2019]?(?P<y>[1-9]0|[0-9]{{3}}0)s{NOT_BEFORE_LETTER}",
        _decade,
    ),
    *(rule("phone", pattern, _phone) for pattern in _PHONES),
    rule("dotted", r"(?<![0-9A-Za-z.])[0-9]+(?:\.[0-9]+){2,}(?![0-9]|\.[0-9])", _dotted),
    rule(
        "range",
        rf"(?<![0-9A-Za-z.,\-])(?P<a>{INTEGER})(?:-|[ \t]?\u2013[ \t]?)(?P<b>{INTEGER})"
        r"(?![0-9]|[.,:\-\u2013][0-9])",
        _range,
    ),
    rule("power", rf"(?P<a>{INTEGER})\^(?P<neg>[-\u2212])?(?P<b>[0-9]+)", _power),
    rule(
        "decimal",
        rf"(?:(?P<neg>{SIGN})?(?P<int>{INTEGER})|(?<![0-9A-Za-z.]))\.(?P<frac>[0-9]+)",
        _decimal,
    ),
    rule("number", rf"(?P<neg>{SIGN})?(?P<int>{INTEGER})", _number),
)
