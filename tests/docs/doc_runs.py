"""Run a document's shell examples, as written, in one bash session (``from doc_runs import ...``).

The blocks run in order under ``set -euo pipefail``, so a command that fails stops the run at
its block. ``curl`` is wrapped to also report each answer's HTTP status on stderr: an example
that sends a request the service refuses fails even where curl itself exits 0.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from doc_blocks import Block

_BLOCK = "@@doc-test-block"
_END = "@@doc-test-end"
_HTTP = "@@doc-test-http"
_PROLOGUE = f"""set -euo pipefail
curl() {{ command curl -w '%{{stderr}}\\n{_HTTP} %{{http_code}}\\n' "$@"; }}
"""
_OUTPUT_ARG = re.compile(r"(?:^|\s)(?:-o|--output)\s+(?P<name>[^\s|;&]+)")


@dataclass
class BlockRun:
    """What one block printed and the HTTP statuses its requests got."""

    block: Block
    reached: bool = False
    finished: bool = False
    stdout: str = ""
    stderr: str = ""
    statuses: list[int] = field(default_factory=list)

    def problems(self) -> list[str]:
        if not self.reached:
            return []
        found = []
        if not self.finished:
            found.append("a command failed (the run stopped in this block)")
        refused = [s for s in self.statuses if not 200 <= s < 300]
        unexpected = sorted(set(refused) - self.block.expect_status)
        if unexpected:
            found.append(f"requests answered {unexpected} (HTTP statuses: {self.statuses})")
        missing = sorted(self.block.expect_status - set(refused))
        if missing:
            found.append(f"expected answers {missing} never came (got {self.statuses})")
        return found


@dataclass
class DocRun:
    """Every run block of one document, and how bash ended."""

    runs: list[BlockRun]
    returncode: int
    stderr: str

    def report(self) -> str:
        """Each failed block with its text and output; empty when all passed."""
        parts = []
        for run in self.runs:
            problems = run.problems()
            if problems:
                parts.append(
                    f"--- {run.block.where}: {'; '.join(problems)}\n{run.block.text}"
                    f"--- its stdout:\n{run.stdout[-3000:]}\n--- its stderr:\n{run.stderr[-3000:]}"
                )
        return "\n".join(parts)

    def stdout_of(self, block: Block) -> str:
        return next(run.stdout for run in self.runs if run.block == block)


def run_blocks(
    blocks: Sequence[Block], cwd: Path, env: dict[str, str], prelude: str = "", timeout: float = 150
) -> DocRun:
    """Run ``blocks`` (none of them skipped) in order in one ``bash`` in ``cwd``."""
    script = [_PROLOGUE, prelude]
    for i, block in enumerate(blocks):
        script.append(f"printf '\\n{_BLOCK} {i}\\n'; printf '\\n{_BLOCK} {i}\\n' >&2\n")
        script.append(block.text)
    script.append(f"printf '\\n{_END}\\n'; printf '\\n{_END}\\n' >&2\n")
    proc = subprocess.Popen(
        ["bash", "-c", "".join(script)],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # so that a timeout stops curl and friends too
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err += f"\n(doc-test: stopped after {timeout} s)"
    runs = [BlockRun(block) for block in blocks]
    _split(out, runs, "stdout")
    _split(err, runs, "stderr")
    return DocRun(runs, proc.returncode, err)


def _split(text: str, runs: list[BlockRun], stream: str) -> None:
    current: BlockRun | None = None
    for line in text.splitlines(keepends=True):
        word = line.strip()
        if word.startswith(_BLOCK + " "):
            if current is not None:
                current.finished = True
            current = runs[int(word.split()[1])]
            current.reached = True
        elif word == _END:
            if current is not None:
                current.finished = True
            current = None
        elif current is not None and stream == "stderr" and word.startswith(_HTTP + " "):
            current.statuses.append(int(word.split()[1]))
        elif current is not None:
            setattr(current, stream, getattr(current, stream) + line)


def output_files(block: Block) -> list[str]:
    """The files a block's commands write with ``-o`` / ``--output``."""
    return [m["name"].strip("'\"") for m in _OUTPUT_ARG.finditer(block.text.replace("\\\n", " "))]


def audio_problem(path: Path) -> str | None:
    """Why ``path`` is not the audio its extension names (``None``: it is)."""
    if not path.is_file() or path.stat().st_size == 0:
        return f"{path.name} was not written"
    head = path.read_bytes()[:12]
    ext = path.suffix.lower().lstrip(".")
    checks = {
        "wav": head[:4] == b"RIFF" and head[8:12] == b"WAVE",
        "flac": head[:4] == b"fLaC",
        "mp3": head[:3] == b"ID3" or (head[0] == 0xFF and head[1] & 0xE0 == 0xE0),
        "ogg": head[:4] == b"OggS",
        "opus": head[:4] == b"OggS",
        "aac": head[0] == 0xFF and head[1] & 0xF0 == 0xF0,
    }
    if not checks.get(ext, True):
        return f"{path.name} is not {ext} audio: it starts {head!r}"
    return None
