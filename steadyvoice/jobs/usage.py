"""A tenant's running total of stored audio, kept beside its jobs for the ``stored_bytes`` quota.

The job store adds a success's output size in the very transaction that records it
(:meth:`~steadyvoice.jobs.store.JobStore.complete`), so the total is exact: a success rolled back
adds nothing, and a job succeeds once (``succeeded`` is final). The retention purge
(steadyvoice.storage.retention) takes a purged output's size off in the transaction that
stamps it ``purged_at``, so each output is counted in once and out at most once.
Migration 0008 filled it from the jobs recorded before it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from steadyvoice.jobs.models import TenantUsage


def _add(dialect: Any) -> Any:
    insert = dialect.insert(TenantUsage).values(
        tenant=bindparam("tenant"), stored_bytes=bindparam("size")
    )
    return insert.on_conflict_do_update(
        index_elements=[TenantUsage.tenant],
        set_={"stored_bytes": TenantUsage.stored_bytes + insert.excluded.stored_bytes},
    )


# Built once: every success runs it (building it costs more than running it).
_ADD = {"postgresql": _add(postgresql), "sqlite": _add(sqlite)}


def add_stored_bytes(s: Session, tenant: str, size: int) -> None:
    """Add ``size`` bytes to ``tenant``'s total, in ``s``'s transaction (one upsert)."""
    dialect = "postgresql" if s.get_bind().dialect.name == "postgresql" else "sqlite"
    s.execute(_ADD[dialect], {"tenant": tenant, "size": size})


def stored_bytes(s: Session, tenant: str) -> int:
    """``tenant``'s stored audio, in bytes (0 before its first success)."""
    total = s.scalar(select(TenantUsage.stored_bytes).where(TenantUsage.tenant == tenant))
    return int(total or 0)
