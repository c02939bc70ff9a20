"""Where a batch stands: counts per status, percent done, throughput and ETA, failed items."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from steadyvoice.batches.models import Batch
from steadyvoice.batches.store import BatchStore, Summary
from steadyvoice.jobs.states import TERMINAL, JobStatus

MAX_FAILED_SHOWN = 100
_STATUSES = tuple(s.value for s in JobStatus)
_TERMINAL = {s.value for s in TERMINAL}


@dataclass(frozen=True)
class Progress:
    """A batch's state, as ``GET /v1/batches/{id}`` answers it."""

    status: str
    counts: dict[str, int]
    done: int
    percent_done: float
    items_per_second: float | None
    eta_seconds: float | None
    failed: list[dict[str, Any]]


def progress_of(
    store: BatchStore,
    batch: Batch,
    *,
    failed_shown: int = MAX_FAILED_SHOWN,
    summary: tuple[Summary, datetime] | None = None,
) -> Progress:
    """``status``: ``queued`` (nothing started), ``running``, ``canceled`` (canceled and
    settled) or ``done`` (every item finished; see the counts for how). ``summary``: the
    batch's counts and timing already read (``progress_of_page``)."""
    if summary is None:
        found, now = store.summaries([batch.id])
        summary = found[batch.id], now
    seen, now = summary
    counts = {s: seen.counts.get(s, 0) for s in _STATUSES}
    total = max(batch.item_count, 1)
    done = sum(n for s, n in counts.items() if s in _TERMINAL)
    in_flight = counts[JobStatus.QUEUED.value] + counts[JobStatus.RUNNING.value]
    first, last = seen.first_started, seen.last_finished
    rate: float | None = None
    finished = counts[JobStatus.SUCCEEDED.value] + counts[JobStatus.FAILED.value]
    if first is not None and finished:
        elapsed = ((now if in_flight else (last or now)) - first).total_seconds()
        rate = finished / elapsed if elapsed > 0 else None
    eta = in_flight / rate if rate and in_flight else (0.0 if not in_flight else None)
    failed = [
        {
            "row": item.row,
            "name": item.name,
            "job_id": item.job.id,
            "code": item.job.error_code,
            "message": item.job.error_message,
        }
        for item in store.items(batch.id, JobStatus.FAILED, limit=failed_shown)
    ]
    return Progress(
        status=_status(batch, counts, in_flight),
        counts=counts,
        done=done,
        percent_done=round(100.0 * done / total, 2),
        items_per_second=round(rate, 3) if rate else None,
        eta_seconds=round(eta, 1) if eta is not None else None,
        failed=failed,
    )


def progress_of_page(store: BatchStore, batches: list[Batch]) -> list[Progress]:
    """Each batch's progress, without its failed items (the single-batch view has them):
    one grouped query for the whole page, not a few per batch."""
    found, now = store.summaries([b.id for b in batches])
    return [progress_of(store, b, failed_shown=0, summary=(found[b.id], now)) for b in batches]


def _status(batch: Batch, counts: dict[str, int], in_flight: int) -> str:
    if in_flight:
        started = sum(counts.values()) - counts[JobStatus.QUEUED.value]
        return "running" if started else "queued"
    return "canceled" if batch.canceled_at is not None else "done"
