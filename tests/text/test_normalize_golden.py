"""Outputs for a fixed corpus, pinned to NORMALIZATION_VERSION.

Jobs record the normalization version beside the text they spoke, so one version must always
mean one output. If a change to the rules alters any output below, this test fails until
NORMALIZATION_VERSION is raised and the new outputs are recorded:

    .venv/bin/python tests/text/test_normalize_golden.py

which writes golden/<version>.json and prints its hash; then add the hash to PINNED. A recorded
file is never edited: PINNED holds its hash.
"""

from __future__ import annotations

from golden_cases import Golden, digest  # type: ignore[import-not-found]

from steadyvoice.text import NORMALIZATION_VERSION, normalize_english

PINNED = {
    "en-1": "b50bb6f8b1582742bde2bd8f121572bceab9651c3a5a719a0dfa15fd5a5a42b8",
}
CORPUS = (
    "Plain words, with no numbers at all.",
    "7 42 105 0 5000 1050 123456",
    "1,234 and 12,345,678 and 999,999,999,999,999 and 1,000,000,000,000,000.",
    "3.5, 0.75, 3.05, .5 and 1,234.56",
    "-12, \u22123.5, (-5), 10^30 and 10^-3",
    "1st 2nd 3rd 11th 22nd 101st 1,000th",
    "12% 3.5% -2% 100 % 2000%",
    "$5.50 $5 $1 $1.01 $0.99 $5.00 $5.5 $1.505 $1,000,000 $2.5 million $5k $3bn -$5",
    "\u00a31 \u00a32.50 \u00a30.01 \u20ac1 \u20ac2.5 million \u20ac1.01 5 \u20ac",
    "in 1999, 2005, 2026, 1900, 1905, 2000, 1100, 2099, 1099, 2100, 1,999 people",
    "the 1990s, the '90s, in her 80s, the 2010s",
    "2026-11-25, 2026/11/25, 25/11/2026, 11/25/2026, 25.11.2026, 5/5/2026, 05/11/2026",
    "2026-02-30 and 31/02/2026 are not dates.",
    "November 25, 2026; Nov. 3; 25 November 2026; on 1 Jan. Then.",
    "9:30, 14:05, 9:00, 14:00, 00:00, 9:30 am, 9:30pm, 12:00 PM, 14:05:30",
    "At 9am, at 9 a.m. tomorrow, at 9 p.m. Then home.",
    "Call 555-123-4567, (555) 123-4567, 555.123.4567, +44 20 7946 0958 or 555-1234.",
    "Account 12345678, code 007, version 1.2.3, host 192.168.0.1.",
    "Pages 10-20, 1999-2005, won 5\u20133, 5 - 3, 1/2, 1, 2, 3.",
    "MP3, COVID-19, 5kg, B2B, x\u00b2, \u0663, \uff11\uff12\uff13",
    "Mr. Smith, Mrs. Jones, Ms Lee, Dr. Who, Prof. Plum, Mt. Everest and St. Louis.",
    "Mr. and Mrs. Smith met the Dr. at noon.",
    "I live on Main St. The house on Elm Dr. is red, down 5th St. today.",
    "Smith vs. Jones; apples, pears, etc. Then e.g. this, i.e. that, approx. 5.",
    "No. 5 was the #1 hit for John Smith Jr. in 1999. I said no.",
    "On 2026-11-25 at 9:30 am, Dr. Smith paid $1,234.56 (12% more than in 1999).",
    "",
    "...!?",
)


GOLDEN = Golden(
    NORMALIZATION_VERSION, normalize_english, CORPUS, "tests/text/test_normalize_golden.py"
)


def test_recorded_outputs_were_never_edited() -> None:
    assert digest(GOLDEN.recorded()) == PINNED.get(NORMALIZATION_VERSION), (
        "the golden file of a version must not change once recorded; raise "
        "NORMALIZATION_VERSION and record a new file instead"
    )


def test_outputs_match_the_version() -> None:
    assert [written for written, _ in GOLDEN.recorded()] == list(CORPUS), (
        "the corpus changed: raise NORMALIZATION_VERSION and record a new golden file"
    )
    changed = GOLDEN.changed()
    assert not changed, (
        f"normalize_english output changed under version {NORMALIZATION_VERSION!r}; raise "
        f"NORMALIZATION_VERSION and record new golden outputs. (written, recorded, now): {changed}"
    )


if __name__ == "__main__":
    GOLDEN.record()
