"""Audit rows of calls ending together share a transaction (steadyvoice.security.audit_writer)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, OperationalError

from steadyvoice.jobs.store import JobStore
from steadyvoice.security.audit import OK, AuditEntry, AuditLog, AuditQuery
from steadyvoice.security.audit_writer import GroupCommit

pytestmark = pytest.mark.timeout(60)

ROWS = 48


def _entry(n: int, action: str = "job.audio.download") -> AuditEntry:
    return AuditEntry(
        action=action,
        outcome=OK,
        status=200,
        method="GET",
        route="/v1/jobs/{job_id}/audio",
        key_id="key_aaaaaaaaaaaa",
        tenant="acme",
        role="viewer",
        object_id=f"job_{n}",
    )


def test_rows_written_at_once_share_commits_and_all_land(store: JobStore) -> None:
    audit = AuditLog(store)
    writer = GroupCommit(audit)
    commits: list[int] = []
    event.listen(store.engine, "commit", lambda _conn: commits.append(1))
    start = threading.Barrier(ROWS)

    def record(n: int) -> None:
        start.wait()
        writer.record(_entry(n))

    with ThreadPoolExecutor(ROWS) as pool:
        list(pool.map(record, range(ROWS)))
    rows = audit.query(AuditQuery(action="job.audio.download", limit=500))
    assert sorted(r.object_id or "" for r in rows) == sorted(f"job_{n}" for n in range(ROWS))
    assert 1 <= len(commits) < ROWS  # grouped: fewer commits than rows
    writer.record(_entry(ROWS))  # a lone row is written at once
    assert len(audit.query(AuditQuery(action="job.audio.download", limit=500))) == ROWS + 1


class _Refusing(AuditLog):
    """Refuses any transaction holding a ``bad`` row, as a constraint would."""

    def record_many(self, entries: list[AuditEntry]) -> Any:
        if any(e.action == "bad" for e in entries):
            raise IntegrityError("INSERT INTO audit_log", {}, ValueError("refused"))
        return super().record_many(entries)


class _Away(AuditLog):
    """The database is away: every write fails after its connect timeout (here 0.3 s)."""

    attempts = 0

    def record_many(self, entries: list[AuditEntry]) -> Any:
        self.attempts += 1
        time.sleep(0.3)  # the timeout being waited out, not a wait for something
        raise OperationalError("INSERT INTO audit_log", {}, ConnectionError("gone"))

    def record(self, entry: AuditEntry) -> Any:
        return self.record_many([entry])


def test_a_bad_row_fails_alone(store: JobStore) -> None:
    audit = _Refusing(store)
    writer = GroupCommit(audit)
    start = threading.Barrier(8)

    def record(n: int) -> str:
        start.wait()
        try:
            writer.record(_entry(n, "bad" if n == 3 else "job.audio.download"))
        except IntegrityError:
            return "failed"
        return "ok"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(record, range(8)))
    assert outcomes == ["ok"] * 3 + ["failed"] + ["ok"] * 4
    rows = audit.query(AuditQuery(action="job.audio.download", limit=50))
    assert len(rows) == 7


def test_a_database_away_fails_the_whole_group_at_once(store: JobStore) -> None:
    """Not retried row by row: with the database away each retry would wait out its own
    timeout, in turn, while every later row waited behind them."""
    audit = _Away(store)
    writer = GroupCommit(audit)
    start = threading.Barrier(8)

    def record(n: int) -> str:
        start.wait()
        try:
            writer.record(_entry(n))
        except OperationalError:
            return "failed"
        return "ok"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(record, range(8)))
    assert outcomes == ["failed"] * 8
    assert audit.attempts < 8, "one attempt per group, not one per row"
