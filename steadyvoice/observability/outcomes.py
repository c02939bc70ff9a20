"""What a finished job means for the SLO: one definition shared by metrics and the report."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

Outcome = Literal["good", "bad", "client_error", "canceled"]

# Failures caused by what the client sent: excluded from availability, counted separately.
CLIENT_ERROR_CODES = frozenset(
    {
        "audio_too_long",  # the text made more audio than jobs.max_audio_seconds
        "invalid_request",
        "spoken_text_too_long",
        "text_empty",
        "text_invalid",
        "text_too_long",
        "text_unspeakable",
        "unknown_voice",
        "unsupported_format",
        "voice_deleted",
        "voice_analysis_outdated",
    }
)


def outcome_of(
    status: str, error_code: str | None, finished_at: datetime | None, deadline_at: datetime
) -> Outcome:
    """``good``: succeeded within its deadline. ``bad``: our failure (incl. late success)."""
    if status == "canceled":
        return "canceled"
    if status == "succeeded":
        return "good" if finished_at is not None and finished_at <= deadline_at else "bad"
    if error_code in CLIENT_ERROR_CODES:
        return "client_error"
    return "bad"


def size_of(chars: int, latency_max_chars: int) -> Literal["short", "long"]:
    """Whether a job counts toward the latency SLO (``short``) or not."""
    return "short" if chars <= latency_max_chars else "long"
