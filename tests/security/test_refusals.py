"""Refusals without a valid key, folded: the first of an address, reason and minute is written at
once, the repeats as one row with a count when the minute closes or the process stops."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from steadyvoice.jobs.store import JobStore
from steadyvoice.security import refusals as refusals_module
from steadyvoice.security.audit import AuditEntry, AuditLog, AuditQuery
from steadyvoice.security.models import AuditEvent
from steadyvoice.security.refusals import MIXED, RefusalFolder

START = 29_000_000 * 60.0  # the start of a clock minute


class Clock:
    def __init__(self) -> None:
        self.now = START + 5.0

    def __call__(self) -> float:
        return self.now


def refusal(client: str = "203.0.113.7", outcome: str = "auth_required", **kw: Any) -> AuditEntry:
    values: dict[str, Any] = {
        "action": "job.create",
        "outcome": outcome,
        "status": 401,
        "method": "POST",
        "route": "/v1/jobs",
        "client": client,
        "request_id": "req-1",
        **kw,
    }
    return AuditEntry(**values)


def rows(audit: AuditLog) -> list[AuditEvent]:
    return list(reversed(audit.query(AuditQuery(limit=1000))))


@pytest.fixture
def folder(store: JobStore) -> tuple[Clock, AuditLog, RefusalFolder]:
    clock = Clock()
    audit = AuditLog(store)
    return clock, audit, RefusalFolder(audit, clock)


def test_a_flood_is_two_rows_per_address_reason_and_minute(
    folder: tuple[Clock, AuditLog, RefusalFolder],
) -> None:
    clock, audit, refusals = folder
    for i in range(200):
        refusals.record(refusal(request_id=f"req-{i}"))
        refusals.record(refusal(outcome="invalid_key", request_id=f"bad-{i}"))
    refusals.record(refusal(client="198.51.100.1"))
    first = rows(audit)  # the first of each group at once, the repeats held
    assert [(r.client, r.outcome, r.count, r.request_id) for r in first] == [
        ("203.0.113.7", "auth_required", 1, "req-0"),
        ("203.0.113.7", "invalid_key", 1, "bad-0"),
        ("198.51.100.1", "auth_required", 1, "req-1"),
    ]
    assert refusals.pending == 398
    assert refusals.flush() == 0  # the minute is still open

    clock.now += 60  # the next minute: its first refusal writes the last minute's repeats
    refusals.record(refusal())
    after = rows(audit)[3:]
    assert [(r.client, r.outcome, r.count, r.request_id) for r in after] == [
        ("203.0.113.7", "auth_required", 1, "req-1"),  # the new minute's first, at once
        ("203.0.113.7", "auth_required", 199, "req-1"),
        ("203.0.113.7", "invalid_key", 199, "bad-1"),
    ]
    repeats = after[1]
    assert repeats.at == datetime.fromtimestamp(START + 5.0, UTC)  # the first repeat's time
    assert (repeats.action, repeats.method, repeats.route) == ("job.create", "POST", "/v1/jobs")
    assert sum(r.count for r in rows(audit)) == 402  # every call is counted
    assert refusals.pending == 0


def test_fields_that_differ_between_repeats_are_marked(
    folder: tuple[Clock, AuditLog, RefusalFolder],
) -> None:
    _, audit, refusals = folder
    refusals.record(refusal())
    refusals.record(refusal(key_id="key_aaaaaaaaaaaa", object_id="job_1"))
    refusals.record(refusal(action="voice.create", route="/v1/voices", object_id="job_1"))
    refusals.record(refusal(method="DELETE", object_id="job_1"))
    refusals.close()  # as the process stops: everything held is written
    repeats = rows(audit)[-1]
    assert repeats.count == 3
    assert (repeats.action, repeats.method, repeats.route) == (MIXED, MIXED, MIXED)
    assert (repeats.key_id, repeats.object_id) == (None, "job_1")


def test_a_failed_write_keeps_the_counts_for_the_next(
    folder: tuple[Clock, AuditLog, RefusalFolder], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, audit, refusals = folder
    for _ in range(5):
        refusals.record(refusal())
    real = audit.record_many

    def down(entries: list[AuditEntry]) -> list[AuditEvent]:
        raise OSError("disk full")

    monkeypatch.setattr(audit, "record_many", down)
    clock.now += 60
    with pytest.raises(OSError):
        refusals.flush()
    refusals.close()  # logged, not raised
    assert refusals.pending == 4
    monkeypatch.setattr(audit, "record_many", real)
    assert refusals.flush() == 1
    assert [r.count for r in rows(audit)] == [1, 4]


def test_new_addresses_of_one_ipv6_64_fold_as_one_client(
    folder: tuple[Clock, AuditLog, RefusalFolder],
) -> None:
    """A client that takes a new address of its /64 for every call (as the failed-auth limit
    counts it) still gets one row a minute, and the repeats name the network."""
    clock, audit, refusals = folder
    for i in range(50):
        refusals.record(refusal(client=f"2001:db8:1:2::{i + 1:x}"))
    refusals.record(refusal(client="::ffff:203.0.113.7"))  # IPv4-mapped: the IPv4 client
    refusals.record(refusal(client="203.0.113.7"))
    clock.now += 60
    refusals.flush()
    assert [(r.client, r.count) for r in rows(audit)] == [
        ("2001:db8:1:2::1", 1),
        ("::ffff:203.0.113.7", 1),
        ("2001:db8:1:2::/64", 49),
        ("203.0.113.7", 1),
    ]


def test_a_first_refusal_that_could_not_be_written_is_written_by_the_next(
    folder: tuple[Clock, AuditLog, RefusalFolder], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, audit, refusals = folder
    real = audit.record

    def down(entry: AuditEntry) -> AuditEvent:
        raise OSError("disk full")

    monkeypatch.setattr(audit, "record", down)
    with pytest.raises(OSError):
        refusals.record(refusal(request_id="lost"))
    monkeypatch.setattr(audit, "record", real)
    refusals.record(refusal(request_id="next"))
    assert [(r.request_id, r.count) for r in rows(audit)] == [("next", 1)]
    assert refusals.pending == 0


def test_memory_is_bounded_by_writing_early(
    folder: tuple[Clock, AuditLog, RefusalFolder],
    store: JobStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, _, refusals = folder
    monkeypatch.setattr(refusals_module, "MAX_PENDING", 10)
    for i in range(30):  # 30 addresses, two calls each, within one minute
        refusals.record(refusal(client=f"2001:db8:{i:x}::1"))
        refusals.record(refusal(client=f"2001:db8:{i:x}::1"))
        assert refusals.pending <= 10
    refusals.close()
    with store.reading() as s:
        total = s.scalar(select(func.sum(AuditEvent.count)))
    assert total == 60


def test_rows_read_back_with_their_count(store: JobStore) -> None:
    audit = AuditLog(store)
    audit.record(refusal(count=7))
    (row,) = audit.query(AuditQuery())
    assert row.count == 7
