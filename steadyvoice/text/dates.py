"""Rules for dates and clock times.

Numeric dates are read as dates only when the order is certain: year first (ISO 8601,
``2026-11-25``), or day and month told apart because one of them is over 12 (``25/11/2026``,
``11/25/2026``) or both are equal. ``05/11/2026`` could be May 11 or 5 November: it is read as the
numbers it shows, "five eleven twenty twenty-six", which is how both readings are said aloud.
"""

from __future__ import annotations

import datetime
import re

from steadyvoice.text import words
from steadyvoice.text.rules import NOT_BEFORE_LETTER, keep_full_stop, rule

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_ABBREVIATED = {name[:3]: name for name in MONTHS} | {"Sept": "September"}
_MONTH = "|".join((*MONTHS, "Sept", *(a for a in _ABBREVIATED if a not in MONTHS)))
_AM_PM = r"(?P<ap>(?:[ap]\.?m|[AP]\.?M)\.?)(?![0-9]|[^\W\d_])"
_SEPARATOR = r"[/.\-]"


def _say_date(year: int, month: int, day: int) -> str | None:
    try:
        datetime.date(year, month, day)
    except ValueError:
        return None
    return f"{MONTHS[month - 1]} {words.ordinal(day)}, {words.year(year)}"


def _year_first(match: re.Match[str]) -> str:
    year, month, day = match["y"], match["m"], match["d"]
    spoken = None
    if match["s1"] == match["s2"]:
        spoken = _say_date(int(year), int(month), int(day))
    return spoken or " ".join(words.run(part) for part in (year, month, day))


def _day_month_year(match: re.Match[str]) -> str:
    first, second, year = int(match["a"]), int(match["b"]), int(match["y"])
    spoken = None
    if match["s1"] == match["s2"]:
        if second <= 12 < first:
            spoken = _say_date(year, second, first)
        elif first <= 12 < second or first == second:
            spoken = _say_date(year, first, second)
    return spoken or f"{words.cardinal(first)} {words.cardinal(second)} {words.run(match['y'])}"


def _month_day(match: re.Match[str]) -> str:
    month = _ABBREVIATED.get(match["mon"], match["mon"])
    day = int(match["d"])
    return f"{month} {words.ordinal(day) if 1 <= day <= 31 else words.cardinal(day)}"


def _day_of_month(match: re.Match[str]) -> str:
    month = _ABBREVIATED.get(match["mon"], match["mon"])
    day = int(match["d"])
    if not 1 <= day <= 31:
        return keep_full_stop(match, f"{words.cardinal(day)} {month}")
    return keep_full_stop(match, f"the {words.ordinal(day)} of {month}")


def _say_clock(hour: int, minute: int, am_pm: str | None) -> str:
    spoken = words.cardinal(hour)
    if minute == 0 and not am_pm:
        return f"{spoken} o'clock" if 1 <= hour <= 12 else f"{spoken} hundred"
    if minute == 0:
        return spoken
    if minute < 10:
        return f"{spoken} oh {words.cardinal(minute)}"
    return f"{spoken} {words.cardinal(minute)}"


def _time(match: re.Match[str]) -> str:
    am_pm = match["ap"]
    spoken = _say_clock(int(match["h"]), int(match["m"]), am_pm)
    seconds = int(match["s"] or 0)
    if seconds:
        spoken += f" and {words.cardinal(seconds)} second{'s' if seconds > 1 else ''}"
    if am_pm:
        return keep_full_stop(match, f"{spoken} {_letters(am_pm)}")
    return spoken


def _hour(match: re.Match[str]) -> str:
    return keep_full_stop(match, f"{words.cardinal(int(match['h']))} {_letters(match['ap'])}")


def _letters(am_pm: str) -> str:
    # espeak-ng spells capital "AM" and "PM" letter by letter; "am" would read as the verb.
    return "AM" if am_pm[0] in "aA" else "PM"


RULES = (
    rule(
        "date_year_first",
        r"(?<![0-9A-Za-z.\-/])(?P<y>[0-9]{4})(?P<s1>[/.\-])(?P<m>[0-9]{1,2})(?P<s2>[/.\-])"
        rf"(?P<d>[0-9]{{1,2}})(?![0-9]|{_SEPARATOR}[0-9])",
        _year_first,
    ),
    rule(
        "date_numeric",
        r"(?<![0-9A-Za-z.\-/])(?P<a>[0-9]{1,2})(?P<s1>[/.\-])(?P<b>[0-9]{1,2})(?P<s2>[/.\-])"
        rf"(?P<y>[0-9]{{4}})(?![0-9]|{_SEPARATOR}[0-9])",
        _day_month_year,
    ),
    rule(
        "time",
        r"(?<![0-9A-Za-z:.])(?P<h>[01]?[0-9]|2[0-3]):(?P<m>[0-5][0-9])(?::(?P<s>[0-5][0-9]))?"
        rf"(?![0-9]|[:.][0-9])(?:[ \t]?{_AM_PM})?",
        _time,
    ),
    rule("hour", rf"(?<![0-9A-Za-z:.,])(?P<h>1[0-2]|0?[1-9])[ \t]?{_AM_PM}", _hour),
    rule(
        "month_day",
        rf"(?<![A-Za-z])(?P<mon>{_MONTH})\.?[ \t]+(?P<d>[0-9]{{1,2}})(?:st|nd|rd|th)?"
        r"(?![0-9A-Za-z]|[.,:][0-9])",
        _month_day,
    ),
    rule(
        "day_of_month",
        rf"(?<![0-9A-Za-z.,])(?P<d>[0-9]{{1,2}})[ \t]+(?P<mon>{_MONTH})\.?{NOT_BEFORE_LETTER}",
        _day_of_month,
    ),
)
