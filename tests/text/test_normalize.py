"""English normalization: one table per kind of text, then the properties that hold for any text."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steadyvoice.text import normalize_english


def _check(written: str, spoken: str) -> None:
    assert normalize_english(written) == spoken


CARDINALS = [
    ("7", "seven"),
    ("42", "forty-two"),
    ("105", "one hundred five"),
    ("1,234", "one thousand two hundred thirty-four"),
    ("1,000,000", "one million"),
    ("12,345,678", "twelve million three hundred forty-five thousand six hundred seventy-eight"),
    ("5000", "five thousand"),
    ("1050", "one thousand fifty"),
    (
        "999,999,999,999,999",
        "nine hundred ninety-nine trillion nine hundred ninety-nine "
        "billion nine hundred ninety-nine million nine hundred ninety-nine thousand nine hundred "
        "ninety-nine",
    ),
    ("0", "zero"),
]
DECIMALS_AND_SIGNS = [
    ("3.5", "three point five"),
    ("0.75", "zero point seven five"),
    ("3.05", "three point zero five"),
    (".5", "point five"),
    ("1,234.56", "one thousand two hundred thirty-four point five six"),
    ("-12", "minus twelve"),
    ("\u22123.5", "minus three point five"),
    ("(-5)", "(minus five)"),
    ("It was -4 outside.", "It was minus four outside."),
    ("10^30", "ten to the power of thirty"),
    ("10^-3", "ten to the power of minus three"),
]
ORDINALS = [
    ("1st", "first"),
    ("2nd", "second"),
    ("3rd", "third"),
    ("11th", "eleventh"),
    ("22nd", "twenty-second"),
    ("101st", "one hundred first"),
    ("1,000th", "one thousandth"),
    ("the 5th of May", "the fifth of May"),
]
PERCENTAGES = [
    ("12%", "twelve percent"),
    ("3.5%", "three point five percent"),
    ("-2%", "minus two percent"),
    ("100 %", "one hundred percent"),
    ("2000%", "two thousand percent"),
]
MONEY = [
    ("$5.50", "five dollars and fifty cents"),
    ("$5", "five dollars"),
    ("$1", "one dollar"),
    ("$1.01", "one dollar and one cent"),
    ("$0.99", "ninety-nine cents"),
    ("$5.00", "five dollars"),
    ("$5.5", "five dollars and fifty cents"),
    ("$1.505", "one point five zero five dollars"),
    ("$1,000,000", "one million dollars"),
    ("$2.5 million", "two point five million dollars"),
    ("$5k", "five thousand dollars"),
    ("$3bn", "three billion dollars"),
    ("-$5", "minus five dollars"),
    ("\u00a31", "one pound"),
    ("\u00a32.50", "two pounds and fifty pence"),
    ("\u00a30.01", "one penny"),
    ("\u20ac1", "one euro"),
    ("\u20ac2.5 million", "two point five million euros"),
    ("\u20ac1.01", "one euro and one cent"),
    ("5 \u20ac", "five euros"),
    ("It costs $20.", "It costs twenty dollars."),
]
YEARS = [
    ("in 1999", "in nineteen ninety-nine"),
    ("2005", "two thousand five"),
    ("2026", "twenty twenty-six"),
    ("1900", "nineteen hundred"),
    ("1905", "nineteen oh five"),
    ("2000", "two thousand"),
    ("1100", "eleven hundred"),
    ("2099", "twenty ninety-nine"),
    # Outside 1100-2099, or written with a separator: a count.
    ("1099", "one thousand ninety-nine"),
    ("2100", "two thousand one hundred"),
    ("1,999 people", "one thousand nine hundred ninety-nine people"),
    ("1990s", "nineteen nineties"),
    ("the '90s", "the nineties"),
    ("in her 80s", "in her eighties"),
    ("2010s", "twenty tens"),
]
DATES = [
    ("2026-11-25", "November twenty-fifth, twenty twenty-six"),
    ("2026/11/25", "November twenty-fifth, twenty twenty-six"),
    ("25/11/2026", "November twenty-fifth, twenty twenty-six"),
    ("11/25/2026", "November twenty-fifth, twenty twenty-six"),
    ("25.11.2026", "November twenty-fifth, twenty twenty-six"),
    ("5/5/2026", "May fifth, twenty twenty-six"),
    # Day and month both 12 or less and different: read as written, no guess.
    ("05/11/2026", "five eleven twenty twenty-six"),
    # Not a real date: the numbers as written.
    ("2026-02-30", "twenty twenty-six zero two thirty"),
    ("31/02/2026", "thirty-one two twenty twenty-six"),
    ("November 25, 2026", "November twenty-fifth, twenty twenty-six"),
    ("Nov. 3", "November third"),
    ("25 November 2026", "the twenty-fifth of November twenty twenty-six"),
    ("on 1 Jan.", "on the first of January."),
]
TIMES = [
    ("9:30", "nine thirty"),
    ("14:05", "fourteen oh five"),
    ("9:00", "nine o'clock"),
    ("14:00", "fourteen hundred"),
    ("00:00", "zero hundred"),
    ("9:30 am", "nine thirty AM"),
    ("9:30pm", "nine thirty PM"),
    ("12:00 PM", "twelve PM"),
    ("14:05:30", "fourteen oh five and thirty seconds"),
    ("9am", "nine AM"),
    ("at 9 a.m. tomorrow", "at nine AM tomorrow"),
    ("at 9 p.m. Then", "at nine PM. Then"),
    ("Leave at 9 p.m.", "Leave at nine PM."),
]
DIGIT_BY_DIGIT = [
    ("555-123-4567", "five five five, one two three, four five six seven"),
    ("(555) 123-4567", "five five five, one two three, four five six seven"),
    ("555.123.4567", "five five five, one two three, four five six seven"),
    ("+44 20 7946 0958", "plus four four, two zero, seven nine four six, zero nine five eight"),
    ("+1 (555) 123-4567", "plus one, five five five, one two three, four five six seven"),
    ("555-1234", "five five five, one two three four"),
    ("account 12345678", "account one two three four five six seven eight"),
    ("1234567", "one two three four five six seven"),
    ("123456", "one hundred twenty-three thousand four hundred fifty-six"),
    ("007", "zero zero seven"),
    ("version 1.2.3", "version one dot two dot three"),
    ("192.168.0.1", "one hundred ninety-two dot one hundred sixty-eight dot zero dot one"),
]
RANGES_AND_MIXED = [
    ("pages 10-20", "pages ten to twenty"),
    ("1999-2005", "nineteen ninety-nine to two thousand five"),
    ("won 5\u20133", "won five to three"),
    ("5 - 3", "five - three"),
    ("MP3", "MP three"),
    ("COVID-19", "COVID-nineteen"),
    ("5kg", "five kg"),
    ("B2B", "B two B"),
    ("1/2", "one/two"),
    ("1, 2, 3", "one, two, three"),
]
ABBREVIATIONS = [
    ("Mr. Smith", "Mister Smith"),
    ("Mrs. Jones", "Missus Jones"),
    ("Ms Lee", "Miz Lee"),
    ("Mr. and Mrs. Smith", "Mister and Missus Smith"),
    ("Dr. Who", "Doctor Who"),
    ("the Dr. said", "the Doctor said"),
    ("Prof. Plum", "Professor Plum"),
    ("Mt. Everest", "Mount Everest"),
    ("St. Louis", "Saint Louis"),
    ("Visit St. Louis", "Visit Saint Louis"),
    ("I live on Main St. The house is red.", "I live on Main Street. The house is red."),
    ("down 5th St. today", "down fifth Street today"),
    ("drive to Elm Dr. and stop", "drive to Elm Drive and stop"),
    ("Smith vs. Jones", "Smith versus Jones"),
    ("apples, pears, etc. Then more.", "apples, pears, et cetera. Then more."),
    ("etc. and so on", "et cetera and so on"),
    ("fruit, e.g. apples", "fruit, for example apples"),
    ("E.g. this", "For example this"),
    ("that, i.e. this", "that, that is this"),
    ("approx. 5", "approximately five"),
    ("No. 5", "Number five"),
    ("see no. 5", "see number five"),
    ("#1 hit", "number one hit"),
    ("John Smith Jr. went", "John Smith Junior went"),
    # Not abbreviations here.
    ("I said no. Then I left.", "I said no. Then I left."),
    ("the st of it", "the st of it"),
]
EDGES = [
    ("", ""),
    ("   ", "   "),
    ("...!?", "...!?"),
    ("$", "$"),
    ("%", "%"),
    ("# tag", "# tag"),
    ("No numbers here.", "No numbers here."),
    # Digits of other scripts are read as their values.
    ("\u0663", "three"),
    ("\uff11\uff12\uff13", "one hundred twenty-three"),
    # Superscripts are not decimal digits: left for the engine.
    ("x\u00b2", "x\u00b2"),
    # Past 999 trillion, counts are read digit by digit.
    ("1,000,000,000,000,000", "one " + " ".join(["zero"] * 15)),
]


@pytest.mark.parametrize(("written", "spoken"), CARDINALS)
def test_cardinals(written: str, spoken: str) -> None:
    _check(written, spoken)


@pytest.mark.parametrize(("written", "spoken"), DECIMALS_AND_SIGNS)
def test_decimals_and_signs(written: str, spoken: str) -> None:
    _check(written, spoken)


@pytest.mark.parametrize(("written", "spoken"), ORDINALS)
def test_ordinals(written: str, spoken: str) -> None:
    _check(written, spoken)


@pytest.mark.parametrize(("written", "spoken"), PERCENTAGES)
def test_percentages(written: str, spoken: str) -> None:
    _check(written, spoken)


@pytest.mark.parametrize(("written", "spoken"), MONEY)
def test_money(written: str, spoken: str) -> None:
    _check(written, spoken)


@pytest.mark.parametrize(("written", "spoken"), YEARS)
def test_years(written: str, spoken: str) -> None:
    _check(written, spoken)


@pytest.mark.parametrize(("written", "spoken"), DATES)
def test_dates(written: str, spoken: str) -> None:
    _check(written, spoken)


@pytest.mark.parametrize(("written", "spoken"), TIMES)
def test_times(written: str, spoken: str) -> None:
    _check(written, spoken)


@pytest.mark.parametrize(("written", "spoken"), DIGIT_BY_DIGIT)
def test_digit_by_digit(written: str, spoken: str) -> None:
    _check(written, spoken)


@pytest.mark.parametrize(("written", "spoken"), RANGES_AND_MIXED)
def test_ranges_and_digits_in_words(written: str, spoken: str) -> None:
    _check(written, spoken)


@pytest.mark.parametrize(("written", "spoken"), ABBREVIATIONS)
def test_abbreviations(written: str, spoken: str) -> None:
    _check(written, spoken)


@pytest.mark.parametrize(("written", "spoken"), EDGES)
def test_edges(written: str, spoken: str) -> None:
    _check(written, spoken)


def test_sentence_of_everything() -> None:
    written = "On 2026-11-25 at 9:30 am, Dr. Smith paid $1,234.56 (12% more than in 1999)."
    assert normalize_english(written) == (
        "On November twenty-fifth, twenty twenty-six at nine thirty AM, Doctor Smith paid one "
        "thousand two hundred thirty-four dollars and fifty-six cents (twelve percent more than "
        "in nineteen ninety-nine)."
    )


@pytest.mark.parametrize("length", [40, 5_000, 100_000])
def test_huge_numbers_are_read_digit_by_digit(length: int) -> None:
    spoken = normalize_english("7" * length)
    assert spoken == " ".join(["seven"] * length)


def test_five_thousand_characters_of_mixed_text() -> None:
    sentence = "Pay $12.50 by 2026-11-25, 9:30 am; call 555-123-4567 about the 3rd item (45%). "
    text = (sentence * 70)[:5_000]
    spoken = normalize_english(text)
    assert not re.search("[0-9]", spoken)
    assert spoken.count("twelve dollars and fifty cents") == text.count("$12.50")


# Pieces that meet each rule's edges, glued in any order: the rules must agree with each other.
_PIECES = [
    *"0123456789",
    *"$\u00a3\u20ac%.,:/-^#+()'\u2212\u2013\"!?;",
    " ",
    " ",
    "\n",
    "\t",
    "a",
    "A",
    "x",
    "am",
    "p.m.",
    "st",
    "th",
    "s",
    "k",
    "m",
    "bn",
    "million",
    "Mr",
    "Mrs",
    "Dr",
    "St",
    "Jr",
    "No",
    "no",
    "vs",
    "etc",
    "e.g.",
    "i.e.",
    "approx",
    "Main",
    "Louis",
    "The",
    "May",
    "Nov",
    "\u0663",
    "\uff11",
    "\u00e9",
    "\u3002",
    "1,234",
    "2026",
    "1999",
    "3.5",
]
_TEXT = st.one_of(st.lists(st.sampled_from(_PIECES), max_size=30).map("".join), st.text())
_MANY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_MANY
@given(_TEXT)
def test_normalizing_twice_changes_nothing(text: str) -> None:
    once = normalize_english(text)
    assert normalize_english(once) == once


@_MANY
@given(_TEXT)
def test_no_ascii_digit_survives(text: str) -> None:
    assert not re.search("[0-9]", normalize_english(text))


@_MANY
@given(st.text(alphabet=st.characters(categories=["L", "P", "Z"], exclude_characters="$#")))
def test_text_without_digits_or_abbreviations_is_untouched(text: str) -> None:
    spoken = normalize_english(text)
    if spoken != text:
        # Only a listed abbreviation may change letters-and-punctuation text.
        assert re.search(r"Mrs?|Ms|Dr|St|Mt|Prof|Jr|Sr|etc|vs|approx|[EeIi]\.", text, re.I)
