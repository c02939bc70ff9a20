"""Text rules for CosyVoice: no raw control tokens from clients, and splitting into segments.

Upstream's frontend splits long text into sentences itself, except when the text holds both
``<|`` and ``|>`` (then it skips normalization and splitting entirely) or when called with
``text_frontend=False``. In those cases, and to retry after running out of memory, the adapter
splits: at sentence ends first, then at commas, then at spaces, and only as a last resort inside
a word.
"""

from __future__ import annotations

import re

from steadyvoice.errors import TextInvalid

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|(?<=[\u3002\uff01\uff1f\uff1b\u2026])\s*")
_CLAUSE_END = re.compile(r"(?<=[,\uff0c\u3001:\uff1a])\s*")
_SPACE = re.compile(r"\s+")


def refuse_control_tokens(text: str, field: str = "text") -> None:
    """Refuse text that would switch off upstream's frontend or smuggle in prompt tokens."""
    if "<|" in text and "|>" in text:
        raise TextInvalid(
            f"{field} may not contain '<|' and '|>': CosyVoice reads them as control tokens, "
            "and steadyvoice writes the prompt tokens itself",
            field=field,
        )


def split_segments(text: str, max_chars: int) -> list[str]:
    """Pieces of at most ``max_chars`` characters, cut at the most natural boundary available."""
    pieces: list[str] = []
    for sentence in _parts(_SENTENCE_END, text):
        pieces.extend(_fit(sentence, max_chars))
    return _pack(pieces, max_chars) or [text.strip()]


def _fit(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    fitted: list[str] = []
    for clause in _pack(_parts(_CLAUSE_END, sentence), max_chars):
        if len(clause) <= max_chars:
            fitted.append(clause)
            continue
        for chunk in _pack(_parts(_SPACE, clause), max_chars):
            fitted.extend(chunk[i : i + max_chars] for i in range(0, len(chunk), max_chars))
    return fitted


def _parts(boundary: re.Pattern[str], text: str) -> list[str]:
    return [p.strip() for p in boundary.split(text) if p.strip()]


def _pack(parts: list[str], max_chars: int) -> list[str]:
    """Join neighbouring parts while they fit; parts that are too long on their own stay alone."""
    packed: list[str] = []
    for part in parts:
        if packed and len(packed[-1]) + 1 + len(part) <= max_chars:
            packed[-1] = _join(packed[-1], part)
        else:
            packed.append(part)
    return packed


def _join(left: str, right: str) -> str:
    # CJK text has no spaces between sentences; Latin text does.
    if left and (ord(left[-1]) > 0x2E7F or ord(right[0]) > 0x2E7F):
        return left + right
    return f"{left} {right}"
