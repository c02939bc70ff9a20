"""Sentence splitting for engines that do not split text themselves.

A sentence ends at ``. ! ? ; :`` followed by whitespace, and at the Chinese and Japanese full
stop, exclamation and question marks and semicolon (U+3002, U+FF01, U+FF1F, U+FF1B, half-width
U+FF61) with or without whitespace after them (and after any closing quotes or brackets).
"""

from __future__ import annotations

import re

_CJK_STOPS = "\u3002\uff01\uff1f\uff1b\uff61"
_CJK_CLOSERS = "\u300d\u300f\u201d\u2019\uff09)"
_BOUNDARY = re.compile(
    f"(?<=[.!?;:{_CJK_STOPS}])\\s+"
    f"|(?:(?<=[{_CJK_STOPS}])|(?<=[{_CJK_STOPS}][{_CJK_CLOSERS}]))"
    f"(?=[^\\s{_CJK_STOPS}{_CJK_CLOSERS}])"
)


def split_sentences(text: str) -> list[str]:
    """Split at sentence punctuation followed by space, or after a CJK sentence mark; never
    returns an empty list."""
    parts = [p.strip() for p in _BOUNDARY.split(text.strip())]
    return [p for p in parts if p] or [text.strip()]
