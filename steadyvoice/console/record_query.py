"""The record page's query: the jobs table filtered, sorted and paged, and its CSV export.

Paging is by keyset, on (sort column, id): a page costs the same at the millionth row as at
the first, and a job created while someone pages does not shift the rows under them. Only
columns that are never NULL are sortable, so the keyset comparison stays a plain ``<``/``>``.

The caller's tenant is a filter the caller cannot lift: ``scope`` (``Principal.scope``) wins
over any ``tenant`` asked for, exactly as the API limits its reads.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from steadyvoice.console.form_values import day, day_end, day_start
from steadyvoice.errors import InvalidCursor, InvalidRequest
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.states import JobStatus
from steadyvoice.jobs.store import JOB_ID, JobStore

PAGE_SIZE = 50
EXPORT_CHUNK = 1000
MAX_TEXT_FILTER = 200
_KEY_TOKEN_PREFIX = re.compile(r"^sv_([0-9a-f]{12})(_.*)?$")
_LIKE_SPECIALS = re.compile(r"([\\%_])")
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
E = TypeVar("E", bound=StrEnum)


class SortKey(StrEnum):
    """Columns the table sorts by (all NOT NULL)."""

    CREATED = "created"
    STATUS = "status"
    VOICE = "voice"
    REQUESTER = "requester"
    TENANT = "tenant"


_COLUMNS: dict[SortKey, InstrumentedAttribute[Any]] = {
    SortKey.CREATED: Job.created_at,
    SortKey.STATUS: Job.status,
    SortKey.VOICE: Job.voice,
    SortKey.REQUESTER: Job.requester,
    SortKey.TENANT: Job.tenant,
}


@dataclass(frozen=True)
class RecordFilter:
    """What the record page asks for; every filter optional. Dates are whole UTC days,
    ``created_to`` included."""

    text: str | None = None
    voice: str | None = None
    requester: str | None = None
    tenant: str | None = None
    status: JobStatus | None = None
    created_from: date | None = None
    created_to: date | None = None
    sort: SortKey = SortKey.CREATED
    descending: bool = True

    def scoped(self, scope: str | None) -> RecordFilter:
        """This filter as a caller limited to ``scope`` may run it (None: every tenant)."""
        return self if scope is None else replace(self, tenant=scope)


@dataclass(frozen=True)
class Page:
    """One page of jobs and the cursors either side (None: no more that way)."""

    jobs: list[Job]
    next_cursor: str | None
    prev_cursor: str | None


@dataclass(frozen=True)
class _Position:
    forward: bool
    value: str
    job_id: str


def requester_id(value: str) -> str:
    """A key id from what a person pastes: ``key_…`` as is, a token or its ``sv_…`` prefix
    mapped to its id (the id is what jobs record)."""
    found = _KEY_TOKEN_PREFIX.fullmatch(value.strip())
    return f"key_{found.group(1)}" if found else value.strip()


def parse_filter(params: dict[str, str]) -> RecordFilter:
    """A filter from form fields (query string); empty fields are no filter.

    Raises ``invalid_request`` naming the field for a value that cannot be a filter.
    """

    def given(name: str) -> str | None:
        value = params.get(name, "").strip()
        return value or None

    text = given("text")
    if text is not None and (len(text) > MAX_TEXT_FILTER or not text.isprintable()):
        raise InvalidRequest(
            f"text must be at most {MAX_TEXT_FILTER} printable characters", field="text"
        )
    for name in ("voice", "requester", "tenant"):
        value = given(name)
        if value is not None and (len(value) > 128 or not value.isprintable()):
            raise InvalidRequest(f"{name} must be at most 128 printable characters", field=name)
    requester = given("requester")
    created_from, created_to = day(given("from"), "from"), day(given("to"), "to")
    if created_from and created_to and created_from > created_to:
        raise InvalidRequest("to must be the same day as from or later", field="to")
    return RecordFilter(
        text=text,
        voice=given("voice"),
        requester=requester_id(requester) if requester else None,
        tenant=given("tenant"),
        status=_choice(JobStatus, given("status"), "status"),
        created_from=created_from,
        created_to=created_to,
        sort=_choice(SortKey, given("sort"), "sort") or SortKey.CREATED,
        descending=given("order") != "asc",
    )


def find_page(
    store: JobStore, f: RecordFilter, cursor: str | None = None, limit: int = PAGE_SIZE
) -> Page:
    """One page of ``f``: the first, or the one ``cursor`` (from a prior page) points to."""
    position = _decode(cursor, f.sort) if cursor else None
    forward = position is None or position.forward
    query = _ordered(_filtered(f), f, forward=forward, after=position).limit(limit + 1)
    with store.reading() as s:
        rows = list(s.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    if not forward:
        rows.reverse()
    if not rows:
        return Page([], None, None)
    has_next = more if forward else True
    has_prev = position is not None and (forward or more)
    return Page(
        rows,
        _encode(True, f.sort, rows[-1]) if has_next else None,
        _encode(False, f.sort, rows[0]) if has_prev else None,
    )


CSV_HEADER = (
    "id",
    "created_at",
    "finished_at",
    "status",
    "tenant",
    "requester",
    "voice",
    "engine",
    "engine_version",
    "format",
    "seed",
    "speed",
    "duration_seconds",
    "sha256",
    "error_code",
    "batch_id",
    "text",
)


def export_csv(store: JobStore, f: RecordFilter) -> Iterator[str]:
    """The whole filtered view as CSV text, header first, in the page's order.

    Read in keyset chunks, each its own short read transaction, so a long export holds no
    connection or snapshot while the client reads slowly. The filter's query is built here,
    before the first line: a filter that cannot be a query fails before any answer is sent,
    not halfway through a download that already said 200.
    """
    return _export_lines(store, f, _filtered(f))


def _export_lines(store: JobStore, f: RecordFilter, filtered: Select[Any]) -> Iterator[str]:
    yield _csv_line(CSV_HEADER)
    after: _Position | None = None
    while True:
        query = _ordered(filtered, f, forward=True, after=after).limit(EXPORT_CHUNK)
        with store.reading() as s:
            rows = list(s.scalars(query))
        for job in rows:
            yield _csv_line(csv_row(job))
        if len(rows) < EXPORT_CHUNK:
            return
        last = rows[-1]
        after = _Position(True, _sort_value(f.sort, last), last.id)


def csv_row(job: Job) -> tuple[str, ...]:
    """A job as the export's cells (text cells made safe to open in a spreadsheet)."""
    params = job.params or {}
    cells = (
        job.id,
        job.created_at.isoformat(),
        job.finished_at.isoformat() if job.finished_at else "",
        job.status,
        job.tenant,
        job.requester,
        job.voice,
        job.engine,
        job.engine_version or "",
        str(params.get("format", "")),
        str(params.get("seed", "")),
        str(params.get("speed", "")),
        "" if job.duration_seconds is None else f"{job.duration_seconds:.3f}",
        job.sha256 or "",
        job.error_code or "",
        job.batch_id or "",
        job.text,
    )
    return tuple(_inert(cell) for cell in cells)


def _inert(cell: str) -> str:
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def _csv_line(cells: tuple[str, ...]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue()


def _filtered(f: RecordFilter) -> Select[Any]:
    q = select(Job)
    if f.text is not None:
        pattern = "%" + _LIKE_SPECIALS.sub(r"\\\1", f.text) + "%"
        q = q.where(Job.text.ilike(pattern, escape="\\"))
    for column, value in (
        (Job.voice, f.voice),
        (Job.requester, f.requester),
        (Job.tenant, f.tenant),
        (Job.status, f.status.value if f.status else None),
    ):
        if value is not None:
            q = q.where(column == value)
    if f.created_from is not None:
        q = q.where(Job.created_at >= day_start(f.created_from))
    if f.created_to is not None:
        q = q.where(Job.created_at < day_end(f.created_to))
    return q


def _ordered(
    q: Select[Any], f: RecordFilter, *, forward: bool, after: _Position | None
) -> Select[Any]:
    column = _COLUMNS[f.sort]
    descending = f.descending == forward  # walking back reverses the page's order
    if after is not None:
        value = _bound(f.sort, after.value)
        if descending:
            q = q.where(or_(column < value, and_(column == value, Job.id < after.job_id)))
        else:
            q = q.where(or_(column > value, and_(column == value, Job.id > after.job_id)))
    if descending:
        return q.order_by(column.desc(), Job.id.desc())
    return q.order_by(column.asc(), Job.id.asc())


def _sort_value(key: SortKey, job: Job) -> str:
    value = getattr(job, _COLUMNS[key].key)
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _bound(key: SortKey, value: str) -> Any:
    return datetime.fromisoformat(value) if key is SortKey.CREATED else value


def _encode(forward: bool, key: SortKey, job: Job) -> str:
    raw = json.dumps(["n" if forward else "p", key.value, _sort_value(key, job), job.id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str, key: SortKey) -> _Position:
    """A cursor this module handed out for ``key``; ``invalid_cursor`` for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        way, sort, value, job_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if sort != key.value or way not in ("n", "p") or not JOB_ID.fullmatch(str(job_id)):
            raise ValueError(cursor)
        if not isinstance(value, str) or len(value) > 256:
            raise ValueError(value)
        if key is SortKey.CREATED and datetime.fromisoformat(value).tzinfo is None:
            raise ValueError(value)
    except (binascii.Error, ValueError, TypeError, OverflowError):
        raise InvalidCursor(
            "this page link is not valid any more; start from the first page", field="cursor"
        ) from None
    return _Position(way == "n", value, str(job_id))


def _choice(kind: type[E], value: str | None, field: str) -> E | None:
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise InvalidRequest(f"{field} must be one of: {allowed}", field=field) from None
