"""Batches that run: all done, the archive against its manifests, mid-run archives, the
archive streamed in pieces, cancel and retry (same seed, same bytes)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from typing import Any

import anyio
from batch_files import CSV, csv_of, lessons, running_worker  # type: ignore[import-not-found]
from fastapi.testclient import TestClient
from processes import poll  # type: ignore[import-not-found]

from steadyvoice.jobs.store import JobStore


def _store(client: TestClient) -> JobStore:
    store: JobStore = client.app.state.services.store  # type: ignore[attr-defined]
    return store


def _submit(client: TestClient, rows: list[dict[str, Any]]) -> str:
    r = client.post("/v1/batches", content=csv_of(rows), headers=CSV)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def _batch(client: TestClient, bid: str) -> dict[str, Any]:
    r = client.get(f"/v1/batches/{bid}")
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


def _archive(client: TestClient, bid: str) -> zipfile.ZipFile:
    r = client.get(f"/v1/batches/{bid}/archive")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(r.content))


def _checked(archive: zipfile.ZipFile) -> list[dict[str, Any]]:
    """The manifest's rows, after checking both manifests agree with the audio entries."""
    assert archive.testzip() is None
    items = json.loads(archive.read("manifest.json"))["items"]
    table = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    assert [int(r["row"]) for r in table] == [i["row"] for i in items]
    audio = sorted(n for n in archive.namelist() if n.startswith("audio/"))
    assert sorted(i["file"] for i in items) == audio
    for item, row in zip(items, table, strict=True):
        data = archive.read(item["file"])
        assert hashlib.sha256(data).hexdigest() == item["sha256"] == row["sha256"]
        assert row["lesson"] == item["metadata"]["lesson"]
    return list(items)


def test_a_500_item_batch_runs_and_its_archive_matches(fast_client: TestClient) -> None:
    settings = fast_client.app.state.services.settings  # type: ignore[attr-defined]
    bid = _submit(fast_client, lessons(500))
    with running_worker(settings):
        poll(lambda: _batch(fast_client, bid)["counts"]["succeeded"] >= 40, 60, "40", every=0.2)
    # The worker has stopped: what is done now is exactly what the archive may hold.
    mid = _batch(fast_client, bid)
    assert mid["status"] == "running" and 40 <= mid["done"] < 500
    early = _checked(_archive(fast_client, bid))
    assert len(early) == mid["counts"]["succeeded"]
    store = _store(fast_client)
    assert {store.get(i["job_id"]).status for i in early} == {"succeeded"}

    with running_worker(settings):
        done = poll(
            lambda: (b := _batch(fast_client, bid))["status"] == "done" and b, 90, "all", every=0.5
        )
    assert done["counts"]["succeeded"] == 500 and done["percent_done"] == 100.0
    assert done["items_per_second"] > 0 and done["eta_seconds"] == 0.0
    items = _checked(_archive(fast_client, bid))
    assert [i["row"] for i in items] == list(range(1, 501))
    first = items[0]
    assert first["file"] == "audio/line-0001.wav" and first["seed"] == 1
    assert first["text"] == "Lesson sentence number 1."
    assert first["engine_version"] and first["duration_seconds"] > 0
    _streamed_in_pieces(fast_client, bid)


def _streamed_in_pieces(client: TestClient, bid: str) -> None:
    """The archive leaves as many bounded body messages, with no length known up front: it
    is sent as it is built, never assembled whole first."""
    token = client.headers["Authorization"].encode()
    sent: list[dict[str, Any]] = []
    path = f"/v1/batches/{bid}/archive"
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"authorization", token)],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }

    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if requested:  # the client stays connected until the answer is complete
            await anyio.sleep_forever()
        requested = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    anyio.run(client.app, scope, receive, send)  # type: ignore[arg-type]
    start, bodies = sent[0], [m["body"] for m in sent[1:] if m["type"] == "http.response.body"]
    assert start["status"] == 200
    assert b"content-length" not in dict(start["headers"])
    pieces = [b for b in bodies if b]
    assert len(pieces) >= 500
    assert max(len(b) for b in pieces) <= 64 * 1024 + 4096
    zipfile.ZipFile(io.BytesIO(b"".join(bodies))).testzip()


def test_cancel_stops_queued_items_and_lets_running_ones_finish(fast_client: TestClient) -> None:
    bid = _submit(fast_client, lessons(20))
    store = _store(fast_client)
    claim = store.claim("host:test", 30)  # one item is running
    assert claim is not None and claim.job.batch_id == bid
    r = fast_client.post(f"/v1/batches/{bid}/cancel")
    assert r.status_code == 200
    assert r.json()["changed"] == 19
    body = r.json()["batch"]
    assert body["counts"]["canceled"] == 19 and body["counts"]["running"] == 1
    assert body["status"] == "running"
    assert store.get(claim.job.id).status == "running"
    assert store.fail(claim, "engine_error", "finished its way")
    after = fast_client.post(f"/v1/batches/{bid}/cancel").json()
    assert after["changed"] == 0 and after["batch"]["status"] == "canceled"


def test_retry_gives_failed_items_a_new_attempt_with_the_same_bytes(
    fast_client: TestClient,
) -> None:
    settings = fast_client.app.state.services.settings  # type: ignore[attr-defined]
    bid = _submit(fast_client, lessons(3))
    store = _store(fast_client)
    claim = store.claim("host:test", 30)
    assert claim is not None
    assert store.fail(claim, "engine_error", "the engine fell over")
    failed = _batch(fast_client, bid)
    assert failed["failed"] == [
        {
            "row": claim.job.batch_row,
            "name": f"line-{claim.job.batch_row:04d}",
            "job_id": claim.job.id,
            "code": "engine_error",
            "message": "the engine fell over",
        }
    ]
    r = fast_client.post(f"/v1/batches/{bid}/retry")
    assert r.status_code == 200 and r.json()["changed"] == 1
    single = fast_client.post(
        "/v1/jobs", json={"text": claim.job.text, "seed": claim.job.params["seed"]}
    ).json()
    with running_worker(settings):
        poll(lambda: _batch(fast_client, bid)["status"] == "done", 60, "the retry to run")
        poll(lambda: store.get(single["id"]).status == "succeeded", 60, "the single job")
    done = _batch(fast_client, bid)
    assert done["counts"] == {**done["counts"], "succeeded": 3, "failed": 0}
    items = _checked(_archive(fast_client, bid))
    again = next(i for i in items if i["row"] == claim.job.batch_row)
    assert again["job_id"] != claim.job.id
    assert again["sha256"] == store.get(single["id"]).sha256
    assert store.get(claim.job.id).status == "failed"  # the first attempt stays on record
    # An output gone from the disk is left out of the archive and its manifests.
    (settings.outputs_dir / store.get(items[0]["job_id"]).output_name).unlink()
    assert [i["row"] for i in _checked(_archive(fast_client, bid))] == [2, 3]


def test_submit_cancel_retry_and_archive_on_postgresql(client_factory: Any, pg_url: str) -> None:
    client = client_factory(database_url=pg_url)
    bid = _submit(client, lessons(5))
    store = _store(client)
    claim = store.claim("host:test", 30)
    assert claim is not None and claim.job.batch_id == bid
    assert store.fail(claim, "engine_error", "boom")
    assert client.post(f"/v1/batches/{bid}/retry").json()["changed"] == 1
    change = client.post(f"/v1/batches/{bid}/cancel").json()
    assert change["changed"] == 5 and change["batch"]["status"] == "canceled"
    assert change["batch"]["counts"]["canceled"] == 5
    assert [b["id"] for b in client.get("/v1/batches").json()["items"]] == [bid]
    assert _checked(_archive(client, bid)) == []


def test_archive_names_stay_unique_when_a_name_looks_like_a_renamed_one(
    fast_client: TestClient,
) -> None:
    settings = fast_client.app.state.services.settings  # type: ignore[attr-defined]
    names = ["x", "x_row3", "x", "X_ROW3", "x_row3_2"]
    rows = [{**row, "name": n} for row, n in zip(lessons(len(names)), names, strict=True)]
    bid = _submit(fast_client, rows)
    with running_worker(settings):
        poll(lambda: _batch(fast_client, bid)["status"] == "done", 60, "the batch to run")
    archive = _archive(fast_client, bid)
    files = [i["file"] for i in _checked(archive)]
    assert len({f.lower() for f in files}) == len(files) == len(archive.namelist()) - 2
    assert files == [
        "audio/x.wav",
        "audio/x_row3.wav",
        "audio/x_row3_2.wav",
        "audio/X_ROW3_row4.wav",
        "audio/x_row3_2_row5.wav",
    ]
