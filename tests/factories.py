"""Plain factories shared by tests (imported as ``from factories import ...``)."""

from __future__ import annotations

from typing import Any

from steadyvoice.jobs.store import NewJob, Result


def new_job(text: str = "Hello there.", **overrides: Any) -> NewJob:
    """A valid request for the fake engine; keyword overrides win."""
    values: dict[str, Any] = {
        "text": text,
        "voice": "alpha",
        "engine": "fake",
        "engine_version": "fake-1+sr16000",
        "params": {"seed": 42, "speed": 1.0, "format": "wav"},
        "requester": "anonymous",
        "deadline_seconds": 600.0,
    }
    values.update(overrides)
    return NewJob(**values)


# A recorded result for store tests that never write audio.
RESULT = Result(
    engine_version="fake-1+sr16000",
    sample_rate=16_000,
    duration_seconds=1.0,
    sha256="ab" * 32,
    size_bytes=32_044,
)
