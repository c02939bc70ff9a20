"""The record's query on SQLite and PostgreSQL: filters, tenant scope, keyset pages, CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from factories import new_job  # type: ignore[import-not-found]
from sqlalchemy import update

from steadyvoice.console.record_query import (
    RecordFilter,
    SortKey,
    export_csv,
    find_page,
    parse_filter,
    requester_id,
)
from steadyvoice.errors import InvalidCursor, InvalidRequest
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.states import JobStatus
from steadyvoice.jobs.store import JobStore


def _seed(store: JobStore) -> list[Job]:
    """Seven jobs, a day apart, over two tenants, two voices and two keys."""
    jobs = []
    texts = [
        "Your March statement is ready.",
        "Rates rise 50% in April_2026.",
        '=HYPERLINK("http://x")',
        "Good morning, class.",
        "The 3 March payment failed.",
        "Weather for Tuesday.",
        "Goodbye.",
    ]
    base = datetime(2026, 3, 1, 12, tzinfo=UTC)
    for i, text in enumerate(texts):
        job, _ = store.create(
            new_job(
                text,
                voice="alpha" if i % 2 else "beta",
                requester="key_aaaaaaaaaaaa" if i < 4 else "key_bbbbbbbbbbbb",
                tenant="bank" if i != 3 else "school",
            )
        )
        with store.session() as s:
            s.execute(
                update(Job).where(Job.id == job.id).values(created_at=base + timedelta(days=i))
            )
        jobs.append(job)
    return jobs


def _texts(jobs: list[Job]) -> list[str]:
    return [j.text for j in jobs]


def test_filters_combine_and_scope_wins(store: JobStore) -> None:
    _seed(store)
    march = find_page(store, RecordFilter(text="march")).jobs
    assert _texts(march) == ["The 3 March payment failed.", "Your March statement is ready."]
    # LIKE's wildcards are plain characters in a search.
    assert _texts(find_page(store, RecordFilter(text="50%")).jobs) == [
        "Rates rise 50% in April_2026."
    ]
    assert find_page(store, RecordFilter(text="50_")).jobs == []  # "_" is no wildcard
    assert len(find_page(store, RecordFilter(voice="alpha")).jobs) == 3
    assert len(find_page(store, RecordFilter(requester="key_bbbbbbbbbbbb")).jobs) == 3
    days = RecordFilter(created_from=date(2026, 3, 2), created_to=date(2026, 3, 3))
    assert len(find_page(store, days).jobs) == 2  # the 2nd and the 3rd, both days included
    assert find_page(store, RecordFilter(status=JobStatus.SUCCEEDED)).jobs == []
    # A tenant-bound caller asking for another tenant still gets only its own.
    asked = RecordFilter(tenant="bank").scoped("school")
    assert _texts(find_page(store, asked).jobs) == ["Good morning, class."]


def test_keyset_pages_walk_forward_and_back(store: JobStore) -> None:
    jobs = _seed(store)
    f = RecordFilter(sort=SortKey.CREATED, descending=False)
    first = find_page(store, f, limit=3)
    assert first.prev_cursor is None and first.next_cursor is not None
    second = find_page(store, f, first.next_cursor, limit=3)
    third = find_page(store, f, second.next_cursor, limit=3)
    assert third.next_cursor is None and third.prev_cursor is not None
    walked = first.jobs + second.jobs + third.jobs
    assert [j.id for j in walked] == [j.id for j in jobs]
    back = find_page(store, f, third.prev_cursor, limit=3)
    assert [j.id for j in back.jobs] == [j.id for j in second.jobs]
    front = find_page(store, f, back.prev_cursor, limit=3)
    assert [j.id for j in front.jobs] == [j.id for j in first.jobs]
    assert front.prev_cursor is None
    # Equal sort values (voice) still page without losing or repeating a row.
    by_voice = RecordFilter(sort=SortKey.VOICE)
    seen, cursor = [], None
    while True:
        page = find_page(store, by_voice, cursor, limit=2)
        seen += [j.id for j in page.jobs]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(seen) == sorted(j.id for j in jobs) and len(seen) == len(set(seen))


def test_a_cursor_is_checked_before_any_query(store: JobStore) -> None:
    _seed(store)
    page = find_page(store, RecordFilter(), limit=2)
    assert page.next_cursor is not None
    for bad in ("junk", "eyJ4IjoxfQ", page.next_cursor + "x"):
        with pytest.raises(InvalidCursor):
            find_page(store, RecordFilter(), bad)
    with pytest.raises(InvalidCursor):  # a cursor of another sort order
        find_page(store, RecordFilter(sort=SortKey.VOICE), page.next_cursor)


def test_csv_has_every_filtered_row_and_no_formula(store: JobStore) -> None:
    _seed(store)
    rows = list(csv.reader(io.StringIO("".join(export_csv(store, RecordFilter(tenant="bank"))))))
    header, body = rows[0], rows[1:]
    assert header[0] == "id" and header[-1] == "text"
    assert len(body) == 6
    texts = [r[-1] for r in body]
    assert '\'=HYPERLINK("http://x")' in texts  # a spreadsheet shows it, never runs it
    assert texts[0] == "Goodbye."  # newest first, as the page shows


def test_form_fields_parse_into_a_filter() -> None:
    f = parse_filter(
        {
            "text": " march ",
            "requester": "sv_0123456789ab",
            "status": "failed",
            "from": "",
            "to": "2026-03-05",
            "sort": "voice",
            "order": "asc",
        }
    )
    assert f == RecordFilter(
        text="march",
        requester="key_0123456789ab",
        status=JobStatus.FAILED,
        created_to=date(2026, 3, 5),
        sort=SortKey.VOICE,
        descending=False,
    )
    assert requester_id("key_0123456789ab") == "key_0123456789ab"
    for field, value in (("status", "done"), ("from", "March"), ("sort", "sha"), ("text", "a\0")):
        with pytest.raises(InvalidRequest) as err:
            parse_filter({field: value})
        assert err.value.details["field"] == field
