"""Which normalizer a text gets: the one for the language of the voice that speaks it.

- ``en``: :func:`~steadyvoice.text.normalize.normalize_english`, recorded as ``en-1``;
- ``zh`` and ``yue``: :func:`~steadyvoice.text.chinese.normalize_chinese` (wetext), recorded
  as ``zh-1+wetext0.1.8``;
- the languages of :data:`~steadyvoice.text.numerals.LANGUAGES`: numbers only, by num2words,
  recorded as ``de-1+num2words0.5.14``;
- any other: none, the text passes unchanged, recorded as ``none``.

A voice that speaks several languages (or any, ``*``) normalizes by the text's script, which
is deterministic: Han letters and no kana are Chinese, kana Japanese, hangul Korean; other text
is in the language the offline identifier is sure of, when the voice speaks it, else English
when the voice speaks it (else the voice's first language).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from steadyvoice.languages.detect import detect
from steadyvoice.text import chinese, numerals
from steadyvoice.text.normalize import NORMALIZATION_VERSION, normalize_english

NONE = "none"  # recorded when the language has no normalizer
ANY = "*"  # in a voice's languages: it takes text in any language

# Cantonese is written in the same characters, and read aloud digit for digit the same way.
_CHINESE = frozenset({"zh", "yue"})


@dataclass(frozen=True)
class Normalizer:
    """A language's normalizer: what a job records for it, and the function."""

    version: str
    normalize: Callable[[str], str]


def normalizer_for(language: str) -> Normalizer | None:
    """The normalizer for a primary language code (``en``, ``zh``, ``de``), or None."""
    if language == "en":
        return Normalizer(NORMALIZATION_VERSION, normalize_english)
    if language in _CHINESE:
        return Normalizer(chinese.version_tag(), chinese.normalize_chinese)
    if language in numerals.LANGUAGES:
        return Normalizer(
            numerals.version_tag(language), partial(numerals.normalize_numbers, language=language)
        )
    return None


def normalize(text: str, language: str) -> tuple[str, str]:
    """``text`` as spoken in ``language``, and what a job records: the normalizer's version,
    or ``none`` (the text unchanged) for a language with no normalizer."""
    normalizer = normalizer_for(language)
    if normalizer is None:
        return text, NONE
    return normalizer.normalize(text), normalizer.version


def text_language(languages: Sequence[str], text: str) -> str:
    """The language to normalize ``text`` in, for a voice that speaks ``languages``."""
    if len(languages) == 1 and languages[0] != ANY:
        return languages[0]
    speaks = set(languages)
    by_script = _script_language(text)
    if by_script is not None and ({by_script, ANY} & speaks):
        return by_script
    # Latin or Cyrillic text for a voice of several such languages (CosyVoice3: en, de, fr...):
    # the identifier's language when it is sure and the voice speaks it, so German numbers are
    # never read as English words.
    found = detect(text).language
    if found is not None and found != "en" and ({found, ANY} & speaks):
        return found
    if "en" in speaks or ANY in speaks or not languages:
        return "en"
    return languages[0]


def _script_language(text: str) -> str | None:
    han = False
    for char in text:
        if "\u3040" <= char <= "\u30ff" or "\uff66" <= char <= "\uff9f":
            return "ja"
        if "\uac00" <= char <= "\ud7a3" or "\u1100" <= char <= "\u11ff":
            return "ko"
        han = han or "\u4e00" <= char <= "\u9fff" or "\u3400" <= char <= "\u4dbf"
    return "zh" if han else None
