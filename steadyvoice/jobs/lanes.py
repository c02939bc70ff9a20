"""Scheduling lanes: ``interactive`` (single jobs, ``/v1/audio/speech``) and ``batch`` (batch
items). The claim takes interactive work first (steadyvoice.jobs.claims); admission counts the
lanes apart (steadyvoice.jobs.admission); each lane has its own deadline."""

from __future__ import annotations

from typing import Final

from steadyvoice.settings import Settings

INTERACTIVE: Final = "interactive"
BATCH: Final = "batch"
LANES: Final = (INTERACTIVE, BATCH)


def deadline_seconds(settings: Settings, lane: str) -> float:
    """The deadline a new job of ``lane`` gets: ``batch.deadline_seconds`` (hours: it waits
    behind interactive work) for batch items, ``jobs.deadline_seconds`` otherwise."""
    return settings.batch.deadline_seconds if lane == BATCH else settings.jobs.deadline_seconds
