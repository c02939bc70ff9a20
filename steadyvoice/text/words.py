"""English words for numbers: num2words spells them, this module decides how a digit string reads.

num2words writes British style ("one thousand, two hundred and thirty-four") and has no option
for American style (upstream issues #20 and #496 leave it to callers), so ``_american`` strips
the commas and the "and": within one number those are the only ones num2words writes. Its years
read "nineteen oh-five"; the hyphen becomes a space.
"""

from __future__ import annotations

from functools import lru_cache

from num2words import num2words  # type: ignore[import-untyped]

# Counts up to 999 trillion are read as words; anything longer is read digit by digit, which
# also bounds the work per number.
MAX_WORD_DIGITS = 15
# Runs of this many digits or more, written without separators, are identifiers (accounts,
# orders, phone numbers) and read digit by digit, as banks and call centres read them.
DIGIT_RUN_DIGITS = 7
YEARS = range(1100, 2100)


def _american(words: str) -> str:
    return words.replace(",", "").replace(" and ", " ").replace("oh-", "oh ")


@lru_cache(maxsize=4096)
def cardinal(value: int) -> str:
    """``1234`` -> ``one thousand two hundred thirty-four``; negative values get ``minus``."""
    return _american(num2words(value, lang="en"))


@lru_cache(maxsize=1024)
def ordinal(value: int) -> str:
    """``22`` -> ``twenty-second``."""
    return _american(num2words(value, lang="en", to="ordinal"))


def digits(text: str) -> str:
    """Every ASCII digit in ``text`` as its own word: ``"4072"`` -> ``four zero seven two``."""
    return " ".join(cardinal(int(c)) for c in text if c in "0123456789")


def count(digit_string: str) -> str:
    """A written count (separators allowed): words up to the cap, digit by digit past it."""
    significant = digit_string.replace(",", "").lstrip("0")
    if len(significant) > MAX_WORD_DIGITS:
        return digits(significant)
    return cardinal(int(significant or "0"))


@lru_cache(maxsize=1024)
def year(value: int) -> str:
    """``1999`` -> ``nineteen ninety-nine``, ``2005`` -> ``two thousand five``, ``1900`` ->
    ``nineteen hundred``, ``1905`` -> ``nineteen oh five``, ``2026`` -> ``twenty twenty-six``."""
    return _american(num2words(value, lang="en", to="year"))


def run(digit_string: str) -> str:
    """A bare run of digits, read the way it most likely means.

    A leading zero (``007``) or seven digits and more (``12345678``) read digit by digit;
    four digits from 1100 to 2099 read as a year; anything else is a count.
    """
    if len(digit_string) > 1 and digit_string.startswith("0"):
        return digits(digit_string)
    if len(digit_string) >= DIGIT_RUN_DIGITS:
        return digits(digit_string)
    value = int(digit_string)
    if len(digit_string) == 4 and value in YEARS:
        return year(value)
    return cardinal(value)


def decimal(whole: str, fraction: str) -> str:
    """``3.05`` -> ``three point zero five``; a missing whole part reads ``point five``."""
    point = f"point {digits(fraction)}"
    return f"{count(whole)} {point}" if whole else point


def plural(words: str) -> str:
    """The plural of a number phrase: ``nineteen ninety`` -> ``nineteen nineties``."""
    head, _, last = words.rpartition(" ")
    if last.endswith("y"):
        last = last[:-1] + "ies"
    elif last.endswith("x"):
        last += "es"
    else:
        last += "s"
    return f"{head} {last}" if head else last
