"""Sentence splitting for engines that do not split text themselves."""

from __future__ import annotations

import re

_BOUNDARY = re.compile("(?<=[.!?;:\u3002\uff01\uff1f])\\s+")


def split_sentences(text: str) -> list[str]:
    """Split at sentence punctuation followed by space; never returns an empty list."""
    parts = [p.strip() for p in _BOUNDARY.split(text.strip())]
    return [p for p in parts if p] or [text.strip()]
