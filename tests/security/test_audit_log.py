"""The audit log on SQLite and PostgreSQL: what is recorded, every filter, paging, append-only."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from steadyvoice.jobs.store import JobStore
from steadyvoice.security.audit import OK, AuditEntry, AuditLog, AuditQuery
from steadyvoice.security.models import AuditEvent

ENTRIES = [
    AuditEntry(
        action="job.create",
        outcome=OK,
        status=202,
        method="POST",
        route="/v1/jobs",
        key_id="key_aaaaaaaaaaaa",
        tenant="acme",
        role="operator",
        object_id="job_1",
        client="10.0.0.1",
        request_id="req-1",
    ),
    AuditEntry(
        action="job.create",
        outcome="rate_limited",
        status=429,
        method="POST",
        route="/v1/jobs",
        key_id="key_aaaaaaaaaaaa",
        tenant="acme",
        role="operator",
    ),
    AuditEntry(
        action="voice.create",
        outcome=OK,
        status=201,
        method="POST",
        route="/v1/voices",
        key_id="key_bbbbbbbbbbbb",
        tenant="beta",
        role="operator",
        object_id="vp_1",
    ),
    AuditEntry(
        action="job.audio.download",
        outcome=OK,
        status=200,
        method="GET",
        route="/v1/jobs/{job_id}/audio",
        key_id="key_bbbbbbbbbbbb",
        tenant="beta",
        role="viewer",
        object_id="job_1",
    ),
    AuditEntry(
        action="POST /v1/jobs",
        outcome="auth_required",
        status=401,
        method="POST",
        route="/v1/jobs",
        client="203.0.113.9",
    ),
    AuditEntry(
        action="key.revoke",
        outcome="last_admin_key",
        status=409,
        method="DELETE",
        route="/v1/keys/{key_id}",
        key_id="key_cccccccccccc",
        tenant="default",
        role="admin",
        object_id="key_cccccccccccc",
    ),
]


@pytest.fixture
def audit(store: JobStore) -> AuditLog:
    return AuditLog(store)


def _record_all(audit: AuditLog) -> list[AuditEvent]:
    return [audit.record(e) for e in ENTRIES]


def _ids(rows: list[AuditEvent]) -> list[int]:
    return [r.id for r in rows]


def _newest_first(rows: list[AuditEvent]) -> list[int]:
    return sorted(_ids(rows), reverse=True)


def _dump(store: JobStore) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT * FROM audit_events ORDER BY id"))]


def test_record_keeps_every_field(audit: AuditLog) -> None:
    rows = _record_all(audit)
    assert _ids(rows) == sorted(_ids(rows)) and len(set(_ids(rows))) == len(rows)
    stored = {r.id: r for r in audit.query(AuditQuery())}
    for entry, row in zip(ENTRIES, rows, strict=True):
        back = stored[row.id]
        for field in (
            "action",
            "outcome",
            "status",
            "method",
            "route",
            "key_id",
            "tenant",
            "role",
            "object_id",
            "client",
            "request_id",
        ):
            assert getattr(back, field) == getattr(entry, field), field
        assert back.at == row.at and back.at.tzinfo is not None


def test_over_long_values_are_cut_and_an_empty_object_id_is_none(audit: AuditLog) -> None:
    row = audit.record(
        AuditEntry(
            action="a" * 100,
            outcome="o" * 100,
            status=422,
            method="PROPFIND-X",
            route="/" + "r" * 300,
            object_id="",
            client="c" * 100,
        )
    )
    [back] = audit.query(AuditQuery())
    assert back.id == row.id
    assert (len(back.action), len(back.outcome), len(back.route)) == (64, 64, 256)
    assert back.method == "PROPFIND" and back.client == "c" * 64
    assert back.object_id is None


def test_query_is_newest_first_and_every_filter_narrows_it(audit: AuditLog) -> None:
    rows = _record_all(audit)
    assert _ids(audit.query(AuditQuery())) == _newest_first(rows)
    filters: list[tuple[str, str]] = [
        ("key_id", "key_aaaaaaaaaaaa"),
        ("key_id", "key_bbbbbbbbbbbb"),
        ("tenant", "beta"),
        ("action", "job.create"),
        ("object_id", "job_1"),
        ("outcome", OK),
        ("outcome", "auth_required"),
        ("tenant", "nobody"),
    ]
    for field, value in filters:
        expected = [r for r in rows if getattr(r, field) == value]
        narrowed: dict[str, Any] = {field: value}
        got = audit.query(AuditQuery(**narrowed))
        assert _ids(got) == _newest_first(expected), (field, value)
    both = audit.query(AuditQuery(key_id="key_aaaaaaaaaaaa", outcome="rate_limited"))
    assert _ids(both) == [rows[1].id]


def test_since_and_until_bound_the_time(audit: AuditLog) -> None:
    rows = _record_all(audit)
    since, until = rows[2].at, rows[4].at
    got = audit.query(AuditQuery(since=since))
    assert _ids(got) == _newest_first([r for r in rows if r.at >= since])
    got = audit.query(AuditQuery(until=until))
    assert _ids(got) == _newest_first([r for r in rows if r.at < until])
    got = audit.query(AuditQuery(since=since, until=until, tenant="beta"))
    expected = [r for r in rows if since <= r.at < until and r.tenant == "beta"]
    assert _ids(got) == _newest_first(expected) and expected


def test_pages_by_id_cover_everything_once(audit: AuditLog) -> None:
    rows = _record_all(audit) + _record_all(audit)
    seen: list[int] = []
    before: int | None = None
    while True:
        page = audit.query(AuditQuery(before_id=before, limit=4))
        assert len(page) <= 4
        seen += _ids(page)
        if len(page) < 4:
            break
        before = page[-1].id
    assert seen == _newest_first(rows)
    ops = audit.query(AuditQuery(action="job.create", before_id=rows[6].id, limit=10))
    assert _ids(ops) == [rows[1].id, rows[0].id]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET outcome = 'ok'",
        "UPDATE audit_events SET key_id = NULL WHERE id = :id",
        "DELETE FROM audit_events WHERE id = :id",
        "DELETE FROM audit_events",
    ],
)
def test_the_database_refuses_update_and_delete(
    audit: AuditLog, store: JobStore, statement: str
) -> None:
    rows = _record_all(audit)
    before = _dump(store)
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(text(statement), {"id": rows[1].id})
    assert _dump(store) == before
    audit.record(ENTRIES[0])  # appending still works
    assert len(_dump(store)) == len(rows) + 1


def test_the_database_refuses_overwriting_or_emptying_the_log(
    audit: AuditLog, store: JobStore, db_url: str
) -> None:
    """The other ways a row can vanish or change, each dialect's own."""
    rows = _record_all(audit)
    before = _dump(store)
    columns = "(id, at, action, outcome, status, method, route)"
    values = "(:id, CURRENT_TIMESTAMP, 'forged', 'ok', 200, 'GET', '/')"
    if db_url.startswith("sqlite"):
        # REPLACE deletes the old row without firing DELETE triggers (recursive_triggers off).
        statements = [f"INSERT OR REPLACE INTO audit_events {columns} VALUES {values}"]
    else:
        statements = [
            f"INSERT INTO audit_events {columns} VALUES {values} "
            "ON CONFLICT (id) DO UPDATE SET action = 'forged'",
            "TRUNCATE audit_events",  # row triggers do not fire on TRUNCATE
        ]
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.execute(text(statement), {"id": rows[0].id})
        assert _dump(store) == before, statement
