"""Text handling before synthesis: English normalization and sentence splitting."""

from __future__ import annotations

from steadyvoice.text.normalize import NORMALIZATION_VERSION, normalize_english
from steadyvoice.text.split import split_sentences

__all__ = ["NORMALIZATION_VERSION", "normalize_english", "split_sentences"]
