"""What the batch routes answer."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from steadyvoice.batches.models import Batch
from steadyvoice.batches.progress import Progress


class FailedItem(BaseModel):
    row: int
    name: str | None
    job_id: str
    code: str | None
    message: str | None


class BatchOut(BaseModel):
    """A batch and where it stands. ``status``: queued, running, done or canceled."""

    id: str
    status: str
    created_at: datetime
    canceled_at: datetime | None
    item_count: int
    source: str
    metadata_columns: list[str]
    counts: dict[str, int] = Field(description="Items per job status.")
    done: int = Field(description="Items finished (succeeded, failed or canceled).")
    percent_done: float
    items_per_second: float | None = Field(description="Finished items per second so far.")
    eta_seconds: float | None = Field(description="Time left at that rate (None: unknown).")
    failed: list[FailedItem] = Field(
        description="Failed items (the first 100), with codes; empty in the list of batches "
        "(read one batch for them)."
    )
    archive_url: str

    @classmethod
    def of(cls, batch: Batch, progress: Progress) -> BatchOut:
        return cls(
            id=batch.id,
            status=progress.status,
            created_at=batch.created_at,
            canceled_at=batch.canceled_at,
            item_count=batch.item_count,
            source=batch.source,
            metadata_columns=batch.metadata_columns,
            counts=progress.counts,
            done=progress.done,
            percent_done=progress.percent_done,
            items_per_second=progress.items_per_second,
            eta_seconds=progress.eta_seconds,
            failed=[FailedItem(**f) for f in progress.failed],
            archive_url=f"/v1/batches/{batch.id}/archive",
        )


class BatchPage(BaseModel):
    items: list[BatchOut]
    next_cursor: str | None


class BatchChange(BaseModel):
    """What a cancel or retry changed, and the batch after it."""

    changed: int = Field(description="Items canceled, or failed items queued again.")
    batch: BatchOut
