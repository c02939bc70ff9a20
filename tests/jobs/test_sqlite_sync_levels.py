"""No connection the service opens to the SQLite job database runs below ``synchronous=NORMAL``.

``OFF`` can corrupt the database in a power cut (a checkpoint copies the WAL in without a sync);
``NORMAL`` in WAL mode can only lose the last commits. Every pooled connection is checked when it
is handed out, and every connection, raw ``sqlite3`` ones too, when it is closed, while the API
(store, rate limiter, incident monitor, reaper, sweeper), an in-process worker and CLI commands
(``backup create`` included) run; and the limiter's and the store's levels are pinned.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from processes import admin_key, poll  # type: ignore[import-not-found]
from sqlalchemy import event, text
from sqlalchemy.pool import Pool

from steadyvoice import cli
from steadyvoice.api.app import create_app
from steadyvoice.engines.registry import build_engine
from steadyvoice.jobs.store import JobStore
from steadyvoice.jobs.worker import Worker
from steadyvoice.settings import Settings

pytestmark = pytest.mark.timeout(120)

NORMAL, FULL = 1, 2
PACKAGE = Path(__file__).resolve().parents[2] / "steadyvoice"


def _seen(conn: sqlite3.Connection) -> tuple[str, int]:
    (_, _, path) = conn.execute("PRAGMA database_list").fetchone()
    return path, int(conn.execute("PRAGMA synchronous").fetchone()[0])


@pytest.fixture
def levels(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int]]]:
    """(database file, ``PRAGMA synchronous``) of every SQLite connection: pooled ones each
    time one is handed out, and every connection, pooled or raw (``sqlite3.connect`` itself,
    as the backup's snapshot opens), when it is closed."""
    seen: list[tuple[str, int]] = []

    def checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        if isinstance(dbapi_conn, sqlite3.Connection):
            seen.append(_seen(dbapi_conn))

    recorded: dict[type[sqlite3.Connection], type[sqlite3.Connection]] = {}

    def recording(base: type[sqlite3.Connection]) -> type[sqlite3.Connection]:
        """``base`` (the caller's ``factory``: the engines' WriterConnection), recording."""

        class Recorded(base):  # type: ignore[valid-type,misc]
            def close(self) -> None:
                seen.append(_seen(self))
                super().close()

        return recorded.setdefault(base, Recorded)

    connect = sqlite3.connect

    def recording_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        kwargs["factory"] = recording(kwargs.get("factory", sqlite3.Connection))
        return connect(*args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", recording_connect)
    event.listen(Pool, "checkout", checkout)
    try:
        yield seen
    finally:
        event.remove(Pool, "checkout", checkout)


def _level(engine: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("PRAGMA synchronous")).scalar_one())


def test_every_connection_is_normal_or_full(
    levels: list[tuple[str, int]],
    tmp_path: Path,
    settings_factory: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = settings_factory(
        security={"rate_sweep_seconds": 0.1},
        slo={"readiness_check_seconds": 0.1},
        jobs={"reaper_interval_seconds": 0.1, "poll_interval_seconds": 0.05},
    )
    with TestClient(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {admin_key(settings.data_dir)}"
        services = client.app.state.services  # type: ignore[attr-defined]
        assert _level(services.store.engine) == FULL
        assert _level(services.limiter._engine) == NORMAL  # its own pool, WAL: NORMAL is safe
        job_id = client.post("/v1/jobs", json={"text": "Hello there."}).json()["id"]

        store = JobStore.from_url(settings.resolved_database_url, settings.data_dir)
        worker = Worker(settings, store, build_engine(settings), "host:sync")
        thread = threading.Thread(target=worker.run)
        thread.start()
        try:
            poll(
                lambda: client.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded", 30, "job"
            )
            assert _level(store.engine) == FULL
        finally:
            worker.request_stop()
            thread.join(timeout=10)
            store.engine.dispose()
        assert client.get(f"/v1/jobs/{job_id}/audio").status_code == 200

    monkeypatch.setenv("STEADYVOICE_DATA_DIR", str(settings.data_dir))
    commands = (
        ["keys", "list"],
        ["verify"],
        ["retention", "holds"],
        ["slo", "report"],
        ["backup", "create", str(tmp_path / "backups")],
    )
    for args in commands:
        assert cli.main(args) == 0, capsys.readouterr().err
    database = str(Path(settings.resolved_database_url.removeprefix("sqlite:///")))
    mine = [level for path, level in levels if path == database]
    assert len(mine) >= 10  # the checks above ran through many connections
    assert set(mine) <= {NORMAL, FULL}, levels
    assert NORMAL in mine  # the limiter's requests were among them
    others = {path: level for path, level in levels if path != database}
    assert others and set(others.values()) <= {NORMAL, FULL}, others  # the backup's snapshot


def test_no_code_asks_for_less_than_normal() -> None:
    """Whatever opens a connection later (a raw sqlite3 one too) cannot ask for ``OFF``."""
    asked = re.compile(r"synchronous\s*=\s*(\w+)", re.IGNORECASE)
    found = {
        (path.name, level.upper())
        for path in PACKAGE.rglob("*.py")
        for level in asked.findall(path.read_text(encoding="utf-8"))
    }
    assert found, "the scan found no PRAGMA at all"
    assert {level for _, level in found} <= {"NORMAL", "FULL", "EXTRA", "1", "2", "3"}, found
