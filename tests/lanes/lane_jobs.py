"""Queueing batch items straight through the store (no batch API needed)."""

from __future__ import annotations

from datetime import timedelta

from factories import new_job  # type: ignore[import-not-found]

from steadyvoice.jobs import store as store_module
from steadyvoice.jobs.dbclock import db_now
from steadyvoice.jobs.lanes import BATCH
from steadyvoice.jobs.store import JobStore


def queue_batch(store: JobStore, tenant: str, batch_id: str, items: int) -> list[str]:
    """Queue ``items`` batch-lane jobs of ``batch_id`` in one transaction; their ids, by row."""
    ids = []
    with store.session() as s:
        now = db_now(s)
        for row in range(1, items + 1):
            job = store_module._queued(new_job(f"Item {row}.", tenant=tenant), now)
            job.lane, job.batch_id, job.batch_row = BATCH, batch_id, row
            job.deadline_at = now + timedelta(hours=6)
            s.add(job)
            ids.append(job.id)
    return ids
