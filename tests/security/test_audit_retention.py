"""Audit retention on SQLite and PostgreSQL: a signed segment is exported, checked against the
log, and only then rotated out; every other way of deleting or changing rows stays refused."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from steadyvoice import cli
from steadyvoice.errors import AuditArchiveInvalid, AuditArchiveMismatch, InvalidRequest
from steadyvoice.jobs.store import JobStore
from steadyvoice.security.audit import AuditEntry, AuditLog, AuditQuery
from steadyvoice.security.models import AuditEvent, AuditRotation
from steadyvoice.security.retention import export, read_key, rotate, verify

KEY = b"k" * 32
CUT = datetime(2026, 3, 1, tzinfo=UTC)


def fill(store: JobStore, before: int, after: int, client: str = "203.0.113.7") -> None:
    audit = AuditLog(store)
    for i in range(before + after):
        day = CUT + timedelta(days=i - before)
        audit.record(
            AuditEntry(
                action="job.create",
                outcome="ok",
                status=202,
                method="POST",
                route="/v1/jobs",
                key_id="key_aaaaaaaaaaaa",
                tenant="acme",
                client=client,
                request_id=f"req-{i}",
                count=1 + i % 3,
                at=day,
            )
        )


def archive_of(store: JobStore, path: Path, before: datetime = CUT, key: bytes = KEY) -> Path:
    with path.open("wb") as f:
        export(store, before, f, key)
    return path


def ids(store: JobStore) -> list[int]:
    with store.reading() as s:
        return list(s.scalars(select(AuditEvent.id).order_by(AuditEvent.id)))


def refused(store: JobStore, sql: str) -> None:
    with pytest.raises(DBAPIError, match="append-only"), store.session() as s:
        s.execute(text(sql))


def test_export_then_rotate_drops_only_the_archived_rows(store: JobStore, tmp_path: Path) -> None:
    fill(store, before=5, after=3)
    archive = archive_of(store, tmp_path / "segment.jsonl")
    segment = verify(archive, KEY)
    assert (segment.first_id, segment.through_id, segment.rows) == (1, 5, 5)
    assert segment.before == CUT
    lines = archive.read_bytes().splitlines()
    assert json.loads(lines[1])["request_id"] == "req-0" and len(lines) == 7

    rotation = rotate(store, archive, CUT, KEY, by="cli:test")
    assert (rotation.through_id, rotation.rows, rotation.by) == (5, 5, "cli:test")
    assert rotation.archive_sha256 == segment.sha256
    left = ids(store)
    assert left[:3] == [6, 7, 8] and len(left) == 4  # the three newer rows and the rotation
    event = AuditLog(store).query(AuditQuery(action="audit.rotate"))[0]
    assert (event.object_id, event.outcome, event.method) == (segment.sha256, "ok", "CLI")
    with store.reading() as s:
        assert s.scalars(select(AuditRotation.through_id)).all() == [5]

    # The guarantee holds for everything else: the rest of the log, and the rotations' record.
    refused(store, "DELETE FROM audit_events WHERE id = 6")
    refused(store, "UPDATE audit_events SET outcome = 'x' WHERE id = 7")
    refused(store, "DELETE FROM audit_rotations")
    refused(store, "UPDATE audit_rotations SET through_id = 100")
    if store.engine.dialect.name == "postgresql":
        refused(store, "TRUNCATE audit_events")
    with pytest.raises(AuditArchiveMismatch):  # the same archive again: its rows are gone
        rotate(store, archive, CUT, KEY, by="cli:test")

    # The next segment starts where the last ended.
    later = archive_of(store, tmp_path / "next.jsonl", CUT + timedelta(days=2))
    assert (verify(later, KEY).first_id, verify(later, KEY).through_id) == (6, 7)


def test_a_hand_made_rotation_row_unlocks_nothing(store: JobStore, tmp_path: Path) -> None:
    """A rotation row must follow its audit.rotate event, name only rows that exist, and never
    go back: a stray INSERT can't make the log's future rows deletable."""
    fill(store, before=3, after=1)
    insert = (
        "INSERT INTO audit_rotations (at, through_id, before, rows, archive_sha256, by) "
        "VALUES (CURRENT_TIMESTAMP, {}, CURRENT_TIMESTAMP, 1, 'x', 'hand')"
    )
    for through in (2, 1_000_000):  # no audit.rotate event just before; past the newest row
        with pytest.raises(DBAPIError, match="audit rotation"), store.session() as s:
            s.execute(text(insert.format(through)))
    refused(store, "DELETE FROM audit_events WHERE id = 1")
    rotate(store, archive_of(store, tmp_path / "segment.jsonl"), CUT, KEY, by="cli:test")
    with pytest.raises(DBAPIError, match="audit rotation"), store.session() as s:
        s.execute(text(insert.format(1)))  # behind the last rotation


def test_a_damaged_or_foreign_archive_deletes_nothing(store: JobStore, tmp_path: Path) -> None:
    fill(store, before=4, after=1)
    archive = archive_of(store, tmp_path / "segment.jsonl")
    good = archive.read_bytes()
    with pytest.raises(AuditArchiveInvalid, match="not signed with this key"):
        rotate(store, archive, CUT, b"z" * 32, by="cli:test")
    with pytest.raises(AuditArchiveMismatch, match="cut at"):
        rotate(store, archive, CUT - timedelta(days=1), KEY, by="cli:test")

    cases = {
        "damaged": good.replace(b"req-2", b"req-9"),
        "cut short": b"".join(good.splitlines(keepends=True)[:-2]),
        "no trailer": b"".join(good.splitlines(keepends=True)[:-1]),
        "empty": b"",
    }
    for name, data in cases.items():
        archive.write_bytes(data)
        with pytest.raises(AuditArchiveInvalid):
            rotate(store, archive, CUT, KEY, by="cli:test")
        assert len(ids(store)) == 5, name
    with pytest.raises(AuditArchiveInvalid, match="cannot read"):
        verify(tmp_path / "missing.jsonl", KEY)


def test_a_segment_signed_right_but_not_what_the_log_holds_is_refused(
    store: JobStore, tmp_path: Path
) -> None:
    """An archive of another database, signed with the same key, does not match this log."""
    fill(store, before=3, after=1)
    other = tmp_path / "other"
    other.mkdir()
    foreign = JobStore.from_url(f"sqlite:///{other / 'jobs.db'}", other)
    foreign.migrate()
    try:
        fill(foreign, before=3, after=1, client="198.51.100.1")
        archive = archive_of(foreign, tmp_path / "foreign.jsonl")
    finally:
        foreign.engine.dispose()
    with pytest.raises(AuditArchiveMismatch, match="differs"):
        rotate(store, archive, CUT, KEY, by="cli:test")
    assert len(ids(store)) == 4


def test_nothing_to_export_and_short_keys_are_refused(store: JobStore, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="no rows before"):
        export(store, CUT, io.BytesIO(), KEY)
    fill(store, before=0, after=2)
    with pytest.raises(InvalidRequest, match="no rows before"):
        export(store, CUT, io.BytesIO(), KEY)
    short = tmp_path / "short.key"
    short.write_text("abc\n")
    with pytest.raises(InvalidRequest, match="at least 32"):
        read_key(short)


def test_the_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("STEADYVOICE_DATA_DIR", str(data))
    assert cli.main(["keys", "create", "--role", "admin", "--tenant", "default"]) == 0
    store = JobStore.from_url(f"sqlite:///{data / 'steadyvoice.db'}", data)
    try:
        fill(store, before=3, after=1)
        key_file = tmp_path / "audit.key"
        key_file.write_text("0123456789abcdef" * 4 + "\n")
        archive = tmp_path / "seg.jsonl"
        capsys.readouterr()
        common = ["--key-file", str(key_file)]
        export_cmd = ["audit", "export", "--before", "2026-03-01", "--out", str(archive)]
        assert cli.main([*export_cmd, *common]) == 0
        exported = json.loads(capsys.readouterr().out)
        assert exported["rows"] == 3 and archive.stat().st_mode & 0o777 == 0o600
        # An existing file is never overwritten.
        assert cli.main([*export_cmd, *common]) == cli.EXIT_CONFIG
        assert cli.main(["audit", "verify", "--archive", str(archive), *common]) == 0
        assert json.loads(capsys.readouterr().out)["sha256"] == exported["sha256"]
        rot = ["audit", "rotate", "--before", "2026-03-01", "--archive", str(archive), *common]
        assert cli.main(rot) == 0
        assert json.loads(capsys.readouterr().out)["rows"] == 3
        assert cli.main(rot) == cli.EXIT_CONFIG  # already rotated: refused, nothing deleted
        assert "audit_archive_mismatch" in capsys.readouterr().err
        future = ["audit", "export", "--before", "2999-01-01", "--out", str(tmp_path / "f")]
        with pytest.raises(SystemExit) as usage:
            cli.main([*future, *common])
        assert usage.value.code == cli.EXIT_CONFIG
        assert "in the future" in capsys.readouterr().err
        assert len(ids(store)) == 2  # the newer row and the rotation's own event
    finally:
        store.engine.dispose()
