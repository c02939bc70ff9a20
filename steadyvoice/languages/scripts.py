"""The Unicode script of each letter, and the scripts each language is written in.

Only letters count (``str.isalpha``): digits, punctuation, symbols and spaces belong to no
language. The table covers the scripts of the languages that Piper and CosyVoice voices speak;
a letter outside it is ``Other``.
"""

from __future__ import annotations

import bisect
from collections import Counter
from functools import cache

LATIN = "Latin"
HAN = "Han"
KANA = "Kana"
HANGUL = "Hangul"
OTHER = "Other"

_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x0041, 0x024F, LATIN),
    (0x0250, 0x02AF, LATIN),  # IPA extensions
    (0x0370, 0x03FF, "Greek"),
    (0x0400, 0x052F, "Cyrillic"),
    (0x0530, 0x058F, "Armenian"),
    (0x0590, 0x05FF, "Hebrew"),
    (0x0600, 0x06FF, "Arabic"),
    (0x0750, 0x077F, "Arabic"),
    (0x08A0, 0x08FF, "Arabic"),
    (0x0900, 0x097F, "Devanagari"),
    (0x0980, 0x09FF, "Bengali"),
    (0x0A00, 0x0A7F, "Gurmukhi"),
    (0x0A80, 0x0AFF, "Gujarati"),
    (0x0B80, 0x0BFF, "Tamil"),
    (0x0C00, 0x0C7F, "Telugu"),
    (0x0C80, 0x0CFF, "Kannada"),
    (0x0D00, 0x0D7F, "Malayalam"),
    (0x0D80, 0x0DFF, "Sinhala"),
    (0x0E00, 0x0E7F, "Thai"),
    (0x0E80, 0x0EFF, "Lao"),
    (0x1000, 0x109F, "Myanmar"),
    (0x10A0, 0x10FF, "Georgian"),
    (0x1100, 0x11FF, HANGUL),
    (0x1200, 0x139F, "Ethiopic"),
    (0x1780, 0x17FF, "Khmer"),
    (0x1C80, 0x1C8F, "Cyrillic"),
    (0x1E00, 0x1EFF, LATIN),
    (0x1F00, 0x1FFF, "Greek"),
    (0x2C60, 0x2C7F, LATIN),
    (0x2DE0, 0x2DFF, "Cyrillic"),
    (0x2E80, 0x2FDF, HAN),
    (0x3005, 0x3007, HAN),
    (0x3021, 0x3029, HAN),
    (0x3031, 0x3035, KANA),
    (0x3038, 0x303B, HAN),
    (0x3040, 0x30FF, KANA),
    (0x3100, 0x312F, HAN),  # Bopomofo: annotates Chinese
    (0x3130, 0x318F, HANGUL),
    (0x31F0, 0x31FF, KANA),
    (0x3400, 0x4DBF, HAN),
    (0x4E00, 0x9FFF, HAN),
    (0xA640, 0xA69F, "Cyrillic"),
    (0xA720, 0xA7FF, LATIN),
    (0xA960, 0xA97F, HANGUL),
    (0xAC00, 0xD7FF, HANGUL),
    (0xF900, 0xFAFF, HAN),
    (0xFB1D, 0xFB4F, "Hebrew"),
    (0xFB50, 0xFDFF, "Arabic"),
    (0xFE70, 0xFEFF, "Arabic"),
    (0xFF21, 0xFF3A, LATIN),  # full-width Latin
    (0xFF41, 0xFF5A, LATIN),
    (0xFF66, 0xFF9F, KANA),  # half-width katakana
    (0xFFA0, 0xFFDC, HANGUL),
    (0x20000, 0x323AF, HAN),
)
_STARTS = [start for start, _, _ in _RANGES]

# The scripts a language's text is written in (besides Latin, see ``readable_scripts``).
_LANGUAGE_SCRIPTS: dict[str, frozenset[str]] = {
    "zh": frozenset({HAN}),
    "yue": frozenset({HAN}),
    "ja": frozenset({HAN, KANA}),
    "ko": frozenset({HANGUL, HAN}),
    **{c: frozenset({"Cyrillic"}) for c in ("ru", "uk", "bg", "be", "mk", "kk", "ky", "mn", "tg")},
    "sr": frozenset({"Cyrillic", LATIN}),
    **{c: frozenset({"Arabic"}) for c in ("ar", "fa", "ur", "ps", "ug")},
    **{c: frozenset({"Devanagari"}) for c in ("hi", "mr", "ne", "sa")},
    "el": frozenset({"Greek"}),
    "he": frozenset({"Hebrew"}),
    "yi": frozenset({"Hebrew"}),
    "hy": frozenset({"Armenian"}),
    "ka": frozenset({"Georgian"}),
    "th": frozenset({"Thai"}),
    "lo": frozenset({"Lao"}),
    "km": frozenset({"Khmer"}),
    "my": frozenset({"Myanmar"}),
    "am": frozenset({"Ethiopic"}),
    "bn": frozenset({"Bengali"}),
    "pa": frozenset({"Gurmukhi"}),
    "gu": frozenset({"Gujarati"}),
    "ta": frozenset({"Tamil"}),
    "te": frozenset({"Telugu"}),
    "kn": frozenset({"Kannada"}),
    "ml": frozenset({"Malayalam"}),
    "si": frozenset({"Sinhala"}),
}

# Which language a script's text most likely is, for messages ("Han": Chinese...).
SCRIPT_LANGUAGES: dict[str, tuple[str, ...]] = {
    HAN: ("zh",),
    KANA: ("ja",),
    HANGUL: ("ko",),
    "Cyrillic": ("ru", "uk", "bg", "sr", "kk"),
    "Arabic": ("ar", "fa", "ur"),
    "Devanagari": ("hi", "mr", "ne"),
    "Greek": ("el",),
    "Hebrew": ("he",),
    "Thai": ("th",),
    "Armenian": ("hy",),
    "Georgian": ("ka",),
    "Bengali": ("bn",),
    "Tamil": ("ta",),
    "Telugu": ("te",),
    "Kannada": ("kn",),
    "Malayalam": ("ml",),
    "Gurmukhi": ("pa",),
    "Gujarati": ("gu",),
    "Sinhala": ("si",),
    "Lao": ("lo",),
    "Khmer": ("km",),
    "Myanmar": ("my",),
    "Ethiopic": ("am",),
}


@cache
def script_of(char: str) -> str:
    """The script of one letter (``Other`` for what the table does not cover)."""
    point = ord(char)
    i = bisect.bisect_right(_STARTS, point) - 1
    if i >= 0:
        start, end, script = _RANGES[i]
        if start <= point <= end:
            return script
    return OTHER


def letter_scripts(text: str) -> Counter[str]:
    """How many letters of each script ``text`` has."""
    return Counter(script_of(c) for c in text if c.isalpha())


def language_scripts(language: str) -> frozenset[str]:
    """The scripts ``language`` is written in: Latin for any language this table does not list."""
    return _LANGUAGE_SCRIPTS.get(language, frozenset({LATIN}))
