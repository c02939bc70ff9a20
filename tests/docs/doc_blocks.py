"""The shell examples of a Markdown document, and the ``doc-test`` comments that mark them
(``from doc_blocks import ...``).

A fenced block whose info string starts with ``bash``, ``sh`` or ``shell`` is an example that
runs. An HTML comment on the line above it (blank lines between are allowed) changes that:

- ``<!-- doc-test: skip: WHY -->``: not run; ``WHY`` is required (a GPU, a sound device, ...).
- ``<!-- doc-test: expect-status 422[, 409] -->``: the example shows an error; its requests
  must answer each of these statuses at least once, and nothing else outside 2xx.

Any other ``doc-test`` comment is an error, so a misspelt marker cannot hide an example.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SHELLS = frozenset({"bash", "sh", "shell"})
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_MARKER = re.compile(r"^\s*<!--\s*doc-test:\s*(?P<body>.*?)\s*-->\s*$")
_SKIP = re.compile(r"^skip:\s*(?P<why>\S.*)$")
_EXPECT = re.compile(r"^expect-status\s+(?P<codes>\d{3}(?:\s*,\s*\d{3})*)$")


class MarkerError(ValueError):
    """A ``doc-test`` comment that is not one of the forms above, or not above a shell block."""


@dataclass(frozen=True)
class Block:
    """One shell example: where it is, its text, and what its marker says."""

    doc: str
    line: int  # of the opening fence, 1-based
    text: str
    skip: str | None = None  # why it is not run
    expect_status: frozenset[int] = frozenset()

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def shell_blocks(path: Path, name: str | None = None) -> list[Block]:
    """Every shell block of the document at ``path``, in order, marked or not."""
    doc = name or path.name
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    pending: tuple[int, str] | None = None  # a marker waiting for its block
    i = 0
    while i < len(lines):
        marker = _MARKER.match(lines[i])
        fence = _FENCE.match(lines[i])
        if marker:
            if pending is not None:
                raise MarkerError(f"{doc}:{pending[0]}: doc-test comment without a block")
            pending = (i + 1, marker["body"])
        elif fence:
            end = _closing(lines, i, fence["fence"])
            lang = (fence["info"].split() or [""])[0].lower()
            if lang in SHELLS:
                text = "\n".join(lines[i + 1 : end]) + "\n"
                blocks.append(_marked(Block(doc, i + 1, text), pending))
            elif pending is not None:
                raise MarkerError(f"{doc}:{pending[0]}: doc-test comment above a {lang!r} block")
            pending = None
            i = end
        elif lines[i].strip() and pending is not None:
            raise MarkerError(f"{doc}:{pending[0]}: doc-test comment not right above a block")
        i += 1
    if pending is not None:
        raise MarkerError(f"{doc}:{pending[0]}: doc-test comment without a block")
    return blocks


def _closing(lines: list[str], start: int, fence: str) -> int:
    """The index of the line closing the fence opened at ``start`` (or the end of the file)."""
    for j in range(start + 1, len(lines)):
        stripped = lines[j].strip()
        if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
            return j
    return len(lines)


def _marked(block: Block, pending: tuple[int, str] | None) -> Block:
    if pending is None:
        return block
    line, body = pending
    if skip := _SKIP.match(body):
        return Block(block.doc, block.line, block.text, skip=skip["why"])
    if expect := _EXPECT.match(body):
        codes = frozenset(int(c) for c in re.split(r"\s*,\s*", expect["codes"]))
        return Block(block.doc, block.line, block.text, expect_status=codes)
    raise MarkerError(
        f"{block.doc}:{line}: unknown doc-test comment {body!r}; "
        "use 'skip: WHY' or 'expect-status CODE'"
    )
