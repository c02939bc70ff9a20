"""POST /v1/batches: every bad row reported and nothing created; idempotency; roles; tenants."""

from __future__ import annotations

import json
from typing import Any

from batch_files import CSV, csv_of, key_for, lessons  # type: ignore[import-not-found]
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from steadyvoice.batches.models import Batch, BatchItem
from steadyvoice.jobs.models import Job
from steadyvoice.security.principal import Role


def _rows_in_db(client: TestClient) -> tuple[int, int, int]:
    store = client.app.state.services.store  # type: ignore[attr-defined]
    with store.reading() as s:
        return tuple(  # type: ignore[return-value]
            int(s.scalar(select(func.count()).select_from(t)) or 0) for t in (Batch, BatchItem, Job)
        )


def _refused(client: TestClient, body: bytes, headers: dict[str, str] | None = None) -> Any:
    r = client.post("/v1/batches", content=body, headers=headers or CSV)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "batch_invalid"
    assert _rows_in_db(client) == (0, 0, 0)
    return {(e["row"], e["column"], e["code"]) for e in error["errors"]}


def test_a_wrong_header_is_refused(batch_client: TestClient) -> None:
    assert (0, "text", "header_invalid") in _refused(batch_client, b"words,voice\nhi,fake-1\n")
    dup = _refused(batch_client, b"text,lesson,lesson\nhi,a,b\n")
    assert (0, "lesson", "header_invalid") in dup


def test_a_file_that_is_not_utf8_names_the_row(batch_client: TestClient) -> None:
    body = "text\nfine\nalso fine\ncaf\u00e9 au lait\n".encode("latin-1")
    assert _refused(batch_client, body) == {(3, None, "encoding_invalid")}


def test_every_bad_row_is_reported_with_its_column(batch_client: TestClient) -> None:
    rows: list[dict[str, Any]] = [
        {"text": "Good row.", "voice": "", "seed": "1"},
        {"text": "Unknown voice.", "voice": "nobody", "seed": "2"},
        {"text": "Bad seed.", "voice": "", "seed": "minus one"},
        {"text": "x" * 6000, "voice": "", "seed": "4"},
        {"text": "", "voice": "", "seed": "5"},
        {"text": "Bad speed.", "voice": "", "seed": "6", "speed": "9"},
        {"text": "Bad format.", "voice": "", "seed": "7", "format": "midi"},
    ]
    found = _refused(batch_client, csv_of(rows))
    assert found == {
        (2, "voice", "unknown_voice"),
        (3, "seed", "seed_invalid"),
        (4, "text", "text_too_long"),
        (5, "text", "text_empty"),
        (6, "speed", "speed_invalid"),
        (7, "format", "unsupported_format"),
    }


def test_too_many_rows_is_refused(client_factory: Any) -> None:
    client = client_factory(batch={"max_items": 5})
    found = _refused(client, csv_of(lessons(6)))
    assert found == {(6, None, "too_many_items")}


def test_a_huge_field_is_refused(batch_client: TestClient) -> None:
    huge = b"text,note\nhello," + b"n" * 200_000 + b"\n"
    assert _refused(batch_client, huge) == {(1, None, "field_too_large")}
    big = csv_of([{"text": "hello", "note": "n" * 120_000}])
    assert (1, "note", "field_too_large") in _refused(batch_client, big)


def test_a_body_over_the_limit_is_413(client_factory: Any) -> None:
    client = client_factory(batch={"max_body_bytes": 4096})
    r = client.post("/v1/batches", content=csv_of(lessons(200)), headers=CSV)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "batch_too_large"
    assert _rows_in_db(client) == (0, 0, 0)


def test_json_jsonl_and_multipart_are_accepted(batch_client: TestClient) -> None:
    items = lessons(3)
    as_json = batch_client.post("/v1/batches", json={"items": items})
    jsonl = "\n".join(json.dumps(i) for i in items).encode()
    as_jsonl = batch_client.post(
        "/v1/batches", content=jsonl, headers={"Content-Type": "application/x-ndjson"}
    )
    upload = batch_client.post(
        "/v1/batches", files={"file": ("lessons.csv", csv_of(items), "text/csv")}
    )
    for r, source in ((as_json, "json"), (as_jsonl, "jsonl"), (upload, "csv")):
        assert r.status_code == 202, r.text
        body = r.json()
        assert body["source"] == source
        assert body["item_count"] == 3 and body["counts"]["queued"] == 3
        assert body["metadata_columns"] == ["lesson"]
    store = batch_client.app.state.services.store  # type: ignore[attr-defined]
    with store.reading() as s:
        jobs = list(s.scalars(select(Job).where(Job.batch_id == as_json.json()["id"])))
    assert sorted(j.batch_row for j in jobs) == [1, 2, 3]
    assert {j.lane for j in jobs} == {"batch"}
    single = batch_client.post("/v1/jobs", json={"text": items[0]["text"], "seed": 1}).json()
    first = next(j for j in jobs if j.batch_row == 1)
    assert first.request_hash == store.get(single["id"]).request_hash  # the same job path


def test_a_repeated_idempotency_key_returns_the_first_batch(batch_client: TestClient) -> None:
    body = csv_of(lessons(4))
    headers = {**CSV, "Idempotency-Key": "lessons-v1"}
    first = batch_client.post("/v1/batches", content=body, headers=headers)
    again = batch_client.post("/v1/batches", content=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert _rows_in_db(batch_client) == (1, 4, 4)
    other = batch_client.post("/v1/batches", content=csv_of(lessons(5)), headers=headers)
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"


def test_tenants_see_only_their_batches_and_viewers_only_read(batch_client: TestClient) -> None:
    acme = key_for(batch_client, Role.OPERATOR, "acme")
    globex = key_for(batch_client, Role.OPERATOR, "globex")
    viewer = key_for(batch_client, Role.VIEWER, "acme")
    r = batch_client.post("/v1/batches", content=csv_of(lessons(2)), headers={**CSV, **acme})
    assert r.status_code == 202
    bid = r.json()["id"]
    for path in ("", "/archive"):
        assert batch_client.get(f"/v1/batches/{bid}{path}", headers=globex).status_code == 404
    for action in ("cancel", "retry"):
        r = batch_client.post(f"/v1/batches/{bid}/{action}", headers=globex)
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "batch_not_found"
    assert batch_client.get("/v1/batches", headers=globex).json()["items"] == []
    assert [b["id"] for b in batch_client.get("/v1/batches", headers=viewer).json()["items"]] == [
        bid
    ]
    assert batch_client.get(f"/v1/batches/{bid}", headers=viewer).status_code == 200
    denied = batch_client.post("/v1/batches", content=csv_of(lessons(1)), headers={**CSV, **viewer})
    assert denied.status_code == 403
    assert batch_client.post(f"/v1/batches/{bid}/cancel", headers=viewer).status_code == 403


def test_the_list_pages_newest_first(batch_client: TestClient) -> None:
    made = [
        batch_client.post("/v1/batches", json={"items": lessons(1)}).json()["id"] for _ in range(3)
    ]
    first = batch_client.get("/v1/batches", params={"limit": 2}).json()
    rest = batch_client.get("/v1/batches", params={"limit": 2, "cursor": first["next_cursor"]})
    seen = [b["id"] for b in first["items"] + rest.json()["items"]]
    assert seen == made[::-1]


def test_batch_calls_are_audited_like_job_calls(batch_client: TestClient) -> None:
    bid = batch_client.post("/v1/batches", json={"items": lessons(2)}).json()["id"]
    batch_client.post(f"/v1/batches/{bid}/cancel")
    batch_client.get(f"/v1/batches/{bid}/archive")
    for action in ("batch.create", "batch.cancel", "batch.archive.download"):
        rows = batch_client.get("/v1/audit", params={"action": action}).json()["items"]
        assert [(r["object_id"], r["outcome"]) for r in rows] == [(bid, "ok")], action


def test_the_list_reads_a_whole_page_in_a_fixed_number_of_queries(
    batch_client: TestClient,
) -> None:
    store = batch_client.app.state.services.store  # type: ignore[attr-defined]
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    def listed() -> list[dict[str, Any]]:
        statements.clear()
        event.listen(store.engine, "before_cursor_execute", count)
        try:
            items: list[dict[str, Any]] = batch_client.get("/v1/batches").json()["items"]
        finally:
            event.remove(store.engine, "before_cursor_execute", count)
        return items

    batch_client.post("/v1/batches", json={"items": lessons(2)})
    assert len(listed()) == 1
    one = len(statements)
    for n in (1, 3, 2, 1):
        batch_client.post("/v1/batches", json={"items": lessons(n)})
    items = listed()
    assert len(statements) == one  # not a few more per batch
    assert [b["counts"]["queued"] for b in items] == [1, 2, 3, 1, 2]
    assert all(b["failed"] == [] and b["status"] == "queued" for b in items)
