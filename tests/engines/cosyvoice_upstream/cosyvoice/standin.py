"""Bookkeeping of the stand-in (not part of upstream): what was called, in what order, how often.

Faults are read from ``standin.json`` in the model dir on every call, so tests (and worker
processes started by tests) can switch them on and off:

- ``oom_over_chars``: CUDA out-of-memory for a segment longer than this (memory grows with length);
- ``oom_marker``: out-of-memory for any segment containing this text;
- ``oom_in``: ``"flow"`` (default, raised where the call was made) or ``"llm"`` (raised in the
  LLM thread, which upstream never checks);
- ``nan``: return NaN samples; ``legacy_interface``: the pre-622a3a1 tensor-prompt signature.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

events: list[tuple[str, dict[str, Any]]] = []
_lock = threading.Lock()
_active = 0
max_active = 0


def record(kind: str, **fields: Any) -> None:
    with _lock:
        events.append((kind, fields))


def reset() -> None:
    global max_active
    with _lock:
        events.clear()
        max_active = 0


def calls() -> list[dict[str, Any]]:
    return [fields for kind, fields in events if kind == "call"]


@contextlib.contextmanager
def busy() -> Iterator[None]:
    """Counts calls in progress at once (upstream has no lock; the adapter must add one)."""
    global _active, max_active
    with _lock:
        _active += 1
        max_active = max(max_active, _active)
    try:
        yield
    finally:
        with _lock:
            _active -= 1


def faults(model_dir: str) -> dict[str, Any]:
    path = Path(model_dir) / "standin.json"
    if not path.is_file():
        return {}
    loaded: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return loaded
