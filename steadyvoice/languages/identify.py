"""Which language a text is, among candidates: py3langid, offline, loaded once per process.

py3langid (a naive Bayes model over byte n-grams, 97 languages, ~0.1 ms a call) was chosen over
lingua on short sentences; bench/language_id.py and docs/benchmarks.md have the measurement.
Restricting to candidates is done by renormalising the full ranking over them, which is what
py3langid's own ``set_languages`` computes, without changing a shared identifier.
"""

from __future__ import annotations

import math
import unicodedata
from functools import cache
from typing import Any


@cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier  # type: ignore[import-untyped]

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=False)


def warm() -> None:
    """Load the model now (about a second) rather than on the first Latin-script request."""
    _known()


def supported(language: str) -> bool:
    """Whether the identifier knows ``language`` (a primary code such as ``de``)."""
    return language in _known()


@cache
def _known() -> frozenset[str]:
    return frozenset(str(c) for c in _identifier().nb_classes)


def probabilities(text: str, candidates: frozenset[str]) -> dict[str, float]:
    """P(language | text) over the ``candidates`` the identifier knows, summing to 1 (empty when
    it knows none of them). Calibrated as py3langid's ``norm_probs`` (softmax of the scores over
    the square root of the UTF-8 length)."""
    scores = [(str(c), float(s)) for c, s in _identifier().rank(text) if c in candidates]
    if not scores:
        return {}
    scale = 1.0 / math.sqrt(len(unicodedata.normalize("NFC", text).encode()) or 1)
    top = max(s for _, s in scores)
    weights = [(c, math.exp((s - top) * scale)) for c, s in scores]
    total = sum(w for _, w in weights)
    return {c: w / total for c, w in weights}
