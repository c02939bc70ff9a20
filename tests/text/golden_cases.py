"""Recorded normalizer outputs (tests/text/golden/<version>.json), shared by the golden tests.

Imported as ``from golden_cases import Golden`` (tests/text is on ``sys.path``). A version's file
is written once, by running its test module as a script, and never edited: the tests pin its
hash, and compare today's outputs with it.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

FOLDER = Path(__file__).parent / "golden"


def digest(cases: list[list[str]]) -> str:
    canonical = json.dumps(cases, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class Golden:
    """One normalizer's corpus under one version; ``script`` is the module that records it."""

    version: str
    normalize: Callable[[str], str]
    corpus: tuple[str, ...]
    script: str

    @property
    def path(self) -> Path:
        return FOLDER / f"{self.version}.json"

    def recorded(self) -> list[list[str]]:
        assert self.path.exists(), (
            f"no golden outputs for {self.version!r}: record them with "
            f"`.venv/bin/python {self.script}` and add the printed hash to PINNED"
        )
        cases: list[list[str]] = json.loads(self.path.read_text("utf-8"))["cases"]
        return cases

    def changed(self) -> list[tuple[str, str, str]]:
        """(written, recorded, now) for each case whose output is no longer the recorded one."""
        return [
            (written, spoken, now)
            for written, spoken in self.recorded()
            if (now := self.normalize(written)) != spoken
        ]

    def record(self) -> None:
        if self.path.exists():
            sys.exit(
                f"{self.path} exists: a recorded version is never rewritten; raise the version"
            )
        cases = [[written, self.normalize(written)] for written in self.corpus]
        FOLDER.mkdir(exist_ok=True)
        document = {"version": self.version, "cases": cases}
        self.path.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", "utf-8")
        print(f'"{self.version}": "{digest(cases)}",')
