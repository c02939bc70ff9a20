"""What a callback says: the finished job or batch, as JSON (docs/webhooks.md)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from steadyvoice.batches.models import Batch
from steadyvoice.batches.store import status_counts
from steadyvoice.jobs.models import Job

JOB_FINISHED = "job.finished"
BATCH_FINISHED = "batch.finished"


def job_body(job: Job) -> dict[str, Any]:
    """The ``job.finished`` body: the outcome, and where the audio is when it succeeded."""
    error = {"code": job.error_code, "message": job.error_message} if job.error_code else None
    output = None
    if job.sha256 is not None:
        output = {
            "sha256": job.sha256,
            "duration_seconds": job.duration_seconds,
            "size_bytes": job.size_bytes,
            "url": f"/v1/jobs/{job.id}/audio",
        }
    return {
        "event": JOB_FINISHED,
        "job": {
            "id": job.id,
            "status": job.status,
            "tenant": job.tenant,
            "lane": job.lane,
            "batch_id": job.batch_id,
            "created_at": _iso(job.created_at),
            "finished_at": _iso(job.finished_at),
            "error": error,
            "output": output,
        },
    }


def batch_body(s: Session, batch: Batch) -> dict[str, Any]:
    """The ``batch.finished`` body: the items' counts per status, as ``GET /v1/batches/{id}``
    counts them (each row's current job, not the failed attempts a retry replaced)."""
    counts = status_counts(s, batch.id)
    return {
        "event": BATCH_FINISHED,
        "batch": {
            "id": batch.id,
            "tenant": batch.tenant,
            "item_count": batch.item_count,
            "counts": counts,
            "created_at": _iso(batch.created_at),
            "canceled_at": _iso(batch.canceled_at),
            "url": f"/v1/batches/{batch.id}",
        },
    }


def encode(body: dict[str, Any]) -> bytes:
    """Compact, key-sorted JSON: what is signed is exactly what is sent."""
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()
