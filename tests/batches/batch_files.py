"""Batch test helpers: CSV bodies, keys of several roles and tenants, and an in-process
worker that runs its queue on the fake engine (no delay)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient

from steadyvoice.engines.registry import build_engine
from steadyvoice.jobs.store import JobStore
from steadyvoice.jobs.worker import Worker
from steadyvoice.security.keys import NewKey
from steadyvoice.security.principal import Role
from steadyvoice.settings import Settings

CSV = {"Content-Type": "text/csv"}


def csv_of(rows: list[dict[str, Any]]) -> bytes:
    """A CSV with a header of every column the rows use, first-seen order."""
    import csv
    import io

    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def lessons(n: int, **extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "text": f"Lesson sentence number {i}.",
            "name": f"line-{i:04d}",
            "seed": i,
            "lesson": f"L{i % 7}",
            **extra,
        }
        for i in range(1, n + 1)
    ]


def key_for(client: TestClient, role: Role, tenant: str = "default") -> dict[str, str]:
    """Authorization headers of a new key with ``role`` in ``tenant``."""
    keys = client.app.state.services.keys  # type: ignore[attr-defined]
    issued = keys.create(NewKey(role, tenant, f"{tenant}-{role.value}"), by="test")
    return {"Authorization": f"Bearer {issued.token}"}


@contextmanager
def running_worker(settings: Settings) -> Iterator[Worker]:
    """A worker on ``settings``' store in a thread, stopped (its job finished) on exit."""
    store = JobStore.from_url(settings.resolved_database_url, settings.data_dir, settings.database)
    worker = Worker(settings, store, build_engine(settings), "host:batch")
    thread = threading.Thread(target=worker.run, name="batch-worker", daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.request_stop()
        thread.join(60)
        store.engine.dispose()
