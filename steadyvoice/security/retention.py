"""Audit log retention: export a signed segment, then rotate it out, and nothing else.

A segment is every row from the oldest left through ``through_id``, the last id before the first
row at or after the cut-off (so a segment is always a whole prefix of the log by id). The file is
JSON lines: a header, one line per row in canonical form (sorted keys, ASCII), and a trailer with
the SHA-256 of everything above it and an HMAC-SHA256 of the same bytes under a key the operator
holds (``--key-file``). A checksum alone shows damage; the HMAC also shows that whoever wrote the
file held the key, so an archive cannot be swapped for a doctored one.

:func:`rotate` checks the archive's checksum and HMAC, that it was cut at the date given, and
that its rows are, byte for byte, the rows the log holds with those ids. Then, in one
transaction, it records an ``audit.rotate`` event and an ``audit_rotations`` row, and deletes
the rows the rotation row covers: the database trigger lets a row go only then (migration 0007).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from steadyvoice.errors import AuditArchiveInvalid, AuditArchiveMismatch, InvalidRequest
from steadyvoice.jobs.models import utcnow
from steadyvoice.jobs.store import JobStore
from steadyvoice.security.audit import OK, AuditEntry, as_row
from steadyvoice.security.models import AuditEvent, AuditRotation

FORMAT = "steadyvoice-audit-segment/1"
BATCH = 2_000
MIN_KEY_BYTES = 32
_ROTATE_LOCK_ID = 0x5736_0007
COLUMNS = (
    "id",
    "at",
    "key_id",
    "tenant",
    "role",
    "action",
    "object_id",
    "outcome",
    "status",
    "method",
    "route",
    "client",
    "request_id",
    "count",
)


@dataclass(frozen=True)
class Segment:
    """What an archive holds: rows ``first_id`` to ``through_id``, all before ``before``."""

    before: datetime
    first_id: int
    through_id: int
    rows: int
    sha256: str


def read_key(path: Path) -> bytes:
    """The HMAC key in ``path``: at least 32 bytes once surrounding whitespace is dropped."""
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        msg = f"cannot read the key file {path}: {exc.strerror}"
        raise InvalidRequest(msg, field="key_file") from None
    if len(key) < MIN_KEY_BYTES:
        raise InvalidRequest(
            f"the key file {path} holds {len(key)} bytes; it needs at least {MIN_KEY_BYTES} "
            "(make one with: openssl rand -hex 32 > FILE)",
            field="key_file",
        )
    return key


def line(row: AuditEvent) -> bytes:
    """One row in the archive's canonical form."""
    values: dict[str, Any] = {c: getattr(row, c) for c in COLUMNS}
    values["at"] = row.at.isoformat()
    return _json(values)


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode() + b"\n"


class _Signer:
    def __init__(self, key: bytes) -> None:
        self.sha = hashlib.sha256()
        self.mac = hmac.new(key, digestmod=hashlib.sha256)

    def update(self, data: bytes) -> None:
        self.sha.update(data)
        self.mac.update(data)


def export(store: JobStore, before: datetime, out: IO[bytes], key: bytes) -> Segment:
    """Write the segment of rows before ``before`` to ``out``; ``invalid_request`` if none."""
    with store.reading() as s:
        first = s.scalar(select(func.min(AuditEvent.id)))
        later = s.scalar(select(func.min(AuditEvent.id)).where(AuditEvent.at >= before))
        through = (later - 1) if later is not None else s.scalar(select(func.max(AuditEvent.id)))
        if first is None or through is None or through < first:
            raise InvalidRequest(
                f"the audit log has no rows before {before.isoformat()} to export", field="before"
            )
        count = int(
            s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.id <= through))
            or 0
        )
    header = {
        "format": FORMAT,
        "before": before.isoformat(),
        "first_id": int(first),
        "through_id": int(through),
        "rows": count,
        "exported_at": utcnow().isoformat(),
    }
    signer = _Signer(key)
    for data in (_json(header), *(line(r) for r in _rows(store, int(through)))):
        signer.update(data)
        out.write(data)
    digest = signer.sha.hexdigest()
    out.write(_json({"sha256": digest, "hmac_sha256": signer.mac.hexdigest()}))
    return Segment(before, int(first), int(through), count, digest)


def verify(path: Path, key: bytes) -> Segment:
    """The segment an archive holds, after checking its checksum and HMAC; otherwise
    ``audit_archive_invalid``."""
    signer = _Signer(key)
    header: dict[str, Any] | None = None
    rows, last = 0, b""
    try:
        with path.open("rb") as f:
            for data in f:
                if last:
                    signer.update(last)
                    if header is None:
                        header = json.loads(last)
                    else:
                        rows += 1
                last = data
    except OSError as exc:
        raise AuditArchiveInvalid(f"cannot read {path}: {exc.strerror}", path=str(path)) from None
    except ValueError:
        raise AuditArchiveInvalid(f"{path} is not an audit segment", path=str(path)) from None
    trailer = _trailer(path, last)
    if not hmac.compare_digest(trailer.get("sha256", ""), signer.sha.hexdigest()):
        raise AuditArchiveInvalid(f"{path} is damaged: its checksum does not match", path=str(path))
    if not hmac.compare_digest(trailer.get("hmac_sha256", ""), signer.mac.hexdigest()):
        raise AuditArchiveInvalid(
            f"{path} was not signed with this key (or was changed after)", path=str(path)
        )
    if header is None or header.get("format") != FORMAT or header.get("rows") != rows:
        raise AuditArchiveInvalid(f"{path} is not a whole audit segment", path=str(path))
    return Segment(
        datetime.fromisoformat(header["before"]),
        int(header["first_id"]),
        int(header["through_id"]),
        rows,
        trailer["sha256"],
    )


def _trailer(path: Path, last: bytes) -> dict[str, str]:
    try:
        trailer = json.loads(last)
    except ValueError:
        trailer = None
    if not isinstance(trailer, dict) or not all(isinstance(v, str) for v in trailer.values()):
        raise AuditArchiveInvalid(f"{path} has no checksum line: is it whole?", path=str(path))
    return trailer


def rotate(store: JobStore, archive: Path, before: datetime, key: bytes, by: str) -> AuditRotation:
    """Delete the rows ``archive`` holds, after proving it holds exactly them; see the module."""
    segment = verify(archive, key)
    if segment.before != before:
        raise AuditArchiveMismatch(
            f"{archive} was cut at {segment.before.isoformat()}, not {before.isoformat()}",
            archived_before=segment.before.isoformat(),
        )
    with store.session() as s:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ROTATE_LOCK_ID})
        _same_rows(s, archive, segment)
        event = as_row(
            AuditEntry(
                action="audit.rotate",
                outcome=OK,
                status=200,
                method="CLI",
                route="steadyvoice audit rotate",
                object_id=segment.sha256,
            )
        )
        rotation = AuditRotation(
            at=utcnow(),
            through_id=segment.through_id,
            before=segment.before,
            rows=segment.rows,
            archive_sha256=segment.sha256,
            by=by[:128],
        )
        s.add(event)
        s.flush()  # the event first: the rotation row's trigger wants it as the newest row
        s.add(rotation)
        s.flush()
        gone = s.execute(delete(AuditEvent).where(AuditEvent.id <= segment.through_id))
        if int(getattr(gone, "rowcount", -1)) != segment.rows:  # a row committed meanwhile
            raise AuditArchiveMismatch(
                "the log changed under the rotation; nothing was deleted: export again",
                archived_rows=segment.rows,
            )
    return rotation


def _same_rows(s: Session, archive: Path, segment: Segment) -> None:
    def mismatch(why: str) -> AuditArchiveMismatch:
        return AuditArchiveMismatch(
            f"{archive} does not hold the rows the log holds ({why}); nothing was deleted",
            path=str(archive),
        )

    with archive.open("rb") as f:
        next(f)  # the header
        for row in _rows_in(s, segment.through_id):
            if f.readline() != line(row):
                raise mismatch(f"row {row.id} differs or is missing")
        extra = f.readline()
        if extra and f.readline():  # anything but the trailer left
            raise mismatch("the archive has rows the log does not")


def _rows(store: JobStore, through: int) -> Iterator[AuditEvent]:
    with store.reading() as s:
        yield from _rows_in(s, through)


def _rows_in(s: Session, through: int) -> Iterator[AuditEvent]:
    after = -1
    while True:
        q = (
            select(AuditEvent)
            .where(AuditEvent.id > after, AuditEvent.id <= through)
            .order_by(AuditEvent.id)
            .limit(BATCH)
        )
        batch = list(s.scalars(q))
        yield from batch
        if len(batch) < BATCH:
            return
        after = batch[-1].id
        s.expunge_all()
