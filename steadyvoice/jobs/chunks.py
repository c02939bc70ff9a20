"""Streamed audio between a worker and the API: chunks in the job store, read as they land.

The worker adds each chunk while it still holds the job (fenced like every other worker
write), so a canceled job's worker learns it on its next chunk and stops. The API reads the
chunks after the last one it sent. Both processes only need the database, so streaming works
the same embedded and distributed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, exists, select
from sqlalchemy.dialects import postgresql, sqlite

from steadyvoice.jobs.models import Job, JobChunk, utcnow
from steadyvoice.jobs.states import TERMINAL
from steadyvoice.jobs.store import Claim, JobStore

# Built once: the API reads here several times a streamed call, and building the statement
# (and loading ORM objects) would cost more than running it.
_AFTER = (
    select(JobChunk.seq, JobChunk.attempt, JobChunk.sample_rate, JobChunk.pcm)
    .where(JobChunk.job_id == bindparam("job_id"), JobChunk.seq > bindparam("seq"))
    .order_by(JobChunk.seq)
    .limit(bindparam("limit"))
)

# The claim still held: JobStore's own test, with the claim's values bound.
_HELD = select(
    exists().where(
        *JobStore.held_by(bindparam("job_id"), bindparam("worker_id"), bindparam("attempt"))
    )
)


def _add(dialect: Any) -> Any:
    return (
        dialect.insert(JobChunk)
        .values(
            job_id=bindparam("job_id"),
            seq=bindparam("seq"),
            attempt=bindparam("attempt"),
            sample_rate=bindparam("sample_rate"),
            pcm=bindparam("pcm"),
            created_at=bindparam("created_at"),
        )
        .on_conflict_do_nothing(index_elements=[JobChunk.job_id, JobChunk.seq])
    )


_ADD = {"postgresql": _add(postgresql), "sqlite": _add(sqlite)}


@dataclass(frozen=True)
class Chunk:
    """One published piece: 16-bit little-endian mono PCM."""

    seq: int
    attempt: int
    sample_rate: int
    pcm: bytes


class ChunkStore:
    """The ``job_chunks`` table, through the job store's connections."""

    def __init__(self, store: JobStore) -> None:
        self._store = store

    def add(self, claim: Claim, seq: int, sample_rate: int, pcm: bytes) -> bool:
        """Publish chunk ``seq``; False (nothing written) if the claim is no longer held.

        A retried attempt publishes the same sequence again: chunks already there are kept.
        """
        held = {"job_id": claim.job.id, "worker_id": claim.worker_id, "attempt": claim.attempt}
        with self._store.session() as s:
            if not s.scalar(_HELD, held):
                return False
            dialect = "postgresql" if s.get_bind().dialect.name == "postgresql" else "sqlite"
            row = {"seq": seq, "sample_rate": sample_rate, "pcm": pcm, "created_at": utcnow()}
            s.execute(_ADD[dialect], {**held, **row})
        return True

    def after(self, job_id: str, seq: int, limit: int = 64) -> list[Chunk]:
        """Chunks numbered above ``seq``, in order (at most ``limit``)."""
        params = {"job_id": job_id, "seq": seq, "limit": limit}
        with self._store.reading() as s:
            rows = s.connection().execute(_AFTER, params).all()
        return [Chunk(int(r.seq), int(r.attempt), int(r.sample_rate), bytes(r.pcm)) for r in rows]

    def delete(self, job_id: str) -> None:
        with self._store.session() as s:
            s.execute(delete(JobChunk).where(JobChunk.job_id == job_id))

    def sweep(self, retention: timedelta, now: datetime | None = None) -> int:
        """Delete chunks of finished jobs older than ``retention``; returns how many."""
        cutoff = (now or utcnow()) - retention
        finished = select(Job.id).where(Job.status.in_([s.value for s in TERMINAL]))
        with self._store.session() as s:
            result = s.execute(
                delete(JobChunk).where(JobChunk.created_at < cutoff, JobChunk.job_id.in_(finished))
            )
        return int(getattr(result, "rowcount", 0) or 0)
