"""What a text is written in: the script of its letters first, then, where the script is
shared by several languages (Latin, Cyrillic, Arabic, Devanagari), an offline identifier.

Short or ambiguous text gives ``language=None`` rather than a guess: callers accept when unsure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from steadyvoice.languages import identify
from steadyvoice.languages.scripts import (
    HAN,
    KANA,
    LATIN,
    OTHER,
    SCRIPT_LANGUAGES,
    letter_scripts,
)

# The Latin-script languages the identifier chooses among (those of Piper's voices, roughly).
LATIN_LANGUAGES = frozenset(
    {"en", "de", "fr", "es", "it", "nl", "pt", "pl", "cs", "sk", "sl", "sv", "da", "no", "fi"}
    | {"hu", "ro", "tr", "vi", "ca", "is", "cy", "sw", "id", "lv"}
)
MIN_WORDS = 4  # fewer words of a shared script: too short to tell its language apart
CONFIDENT = 0.9  # the identifier's probability a language must reach to be named
LIKELY = 0.5  # enough to name the language of a script several languages share (Cyrillic)


@dataclass(frozen=True)
class Detection:
    """A text's main script (most letters), its language if clear, and its letters by script."""

    script: str | None
    language: str | None
    confidence: float
    letters: dict[str, int] = field(default_factory=dict)

    @property
    def total_letters(self) -> int:
        return sum(self.letters.values())


def detect(text: str) -> Detection:
    """The script and, when clear, the language of ``text`` (``zh``, ``ja``, ``en``...)."""
    counts = letter_scripts(text)
    counts.pop(OTHER, None)  # letters of scripts not tabled (letter-like symbols): no evidence
    if not counts:
        return Detection(None, None, 0.0, {})
    letters = dict(counts.most_common())
    script = counts.most_common(1)[0][0]
    if KANA in counts and script in (HAN, KANA):  # Chinese is never written with kana
        return Detection(KANA, "ja", 1.0, letters)
    if script == LATIN:
        language, confidence = identify_among(text, LATIN_LANGUAGES)
        return Detection(script, language, confidence, letters)
    candidates = SCRIPT_LANGUAGES.get(script, ())
    if len(candidates) == 1:
        return Detection(script, candidates[0], 1.0, letters)
    # The script alone already says a lot: the language is only named, so a likely one will do.
    language, confidence = identify_among(text, frozenset(candidates), LIKELY, min_words=1)
    return Detection(script, language, confidence, letters)


def identify_among(
    text: str,
    candidates: frozenset[str],
    confident: float = CONFIDENT,
    min_words: int = MIN_WORDS,
) -> tuple[str | None, float]:
    """The most likely of ``candidates`` if it is clear (at least ``min_words`` words and a
    probability of ``confident``), else ``None``; and its probability."""
    probs = identify.probabilities(text, candidates)
    if not probs:
        return None, 0.0
    best = max(probs, key=probs.__getitem__)
    if word_count(text) < min_words or probs[best] < confident:
        return None, probs[best]
    return best, probs[best]


def word_count(text: str) -> int:
    """Words with a letter in them (numbers and punctuation alone are no words)."""
    return sum(1 for word in text.split() if any(c.isalpha() for c in word))
