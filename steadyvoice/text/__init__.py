"""Text handling before synthesis: normalization by language and sentence splitting."""

from __future__ import annotations

from steadyvoice.text.languages import normalize, normalizer_for, text_language
from steadyvoice.text.normalize import NORMALIZATION_VERSION, normalize_english
from steadyvoice.text.split import split_sentences

__all__ = [
    "NORMALIZATION_VERSION",
    "normalize",
    "normalize_english",
    "normalizer_for",
    "split_sentences",
    "text_language",
]
