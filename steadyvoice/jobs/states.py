"""Job states and the only legal transitions between them."""

from __future__ import annotations

from enum import StrEnum

from steadyvoice.errors import IllegalTransition


class JobStatus(StrEnum):
    """The life of a job. Stored as text."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED})

TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    # queued -> failed: deadline passed before any worker took it.
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELED, JobStatus.FAILED}),
    # running -> queued: lease expired or worker died, retried.
    JobStatus.RUNNING: frozenset(
        {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.QUEUED, JobStatus.CANCELED}
    ),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELED: frozenset(),
}


def sources_of(target: JobStatus) -> frozenset[JobStatus]:
    """The states from which ``target`` may be entered (used in guarded UPDATEs)."""
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)


def check_transition(current: JobStatus, target: JobStatus) -> None:
    """Raise IllegalTransition unless ``current -> target`` is allowed."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(
            f"a {current.value} job cannot become {target.value}",
            current=current.value,
            target=target.value,
        )
