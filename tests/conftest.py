"""Shared fixtures: databases, settings, stores, in-process API clients, real service processes."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

# `steadyvoice serve` exports PROMETHEUS_MULTIPROC_DIR to its children; prometheus_client picks
# its storage when first imported, so a value inherited from the shell (or a serve under test)
# must be gone before any test imports it, or in-process metrics would go to stray files.
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

import pytest
from fastapi.testclient import TestClient
from pg_databases import PG_ADMIN_URL, fresh_pg_database  # type: ignore[import-not-found]
from processes import (  # type: ignore[import-not-found]
    Process,
    Service,
    ServiceFactory,
    admin_key,
    free_port,
)
from s3_server import aws_env, own_s3_server, s3_server  # type: ignore[import-not-found]  # noqa: F401

from steadyvoice.api.app import create_app
from steadyvoice.jobs.store import JobStore
from steadyvoice.settings import Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build their own settings; stray STEADYVOICE_* variables must not leak in."""
    for key in list(os.environ):
        if key.startswith("STEADYVOICE_"):
            monkeypatch.delenv(key)


@pytest.fixture
def pg_admin_url() -> str:
    """A connection URL to the server's maintenance database (for CREATE/DROP DATABASE)."""
    return PG_ADMIN_URL


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the local server, dropped afterwards."""
    with fresh_pg_database() as url:
        yield url


# The ``store`` fixture starts from copies of a database migrated once per run instead of
# migrating each one again: the same schema (the copies are byte for byte), and ``migrate`` still
# runs on them, a no-op.


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to the newest revision, all in the file (none in its WAL)."""
    root = tmp_path_factory.mktemp("migrated")
    path = root / "jobs.db"
    made = JobStore.from_url(f"sqlite:///{path}", root)
    made.migrate()
    made.engine.dispose()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture(scope="session")
def migrated_pg_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The name of a PostgreSQL database migrated to the newest revision, dropped at the end."""
    with fresh_pg_database() as url:
        made = JobStore.from_url(url, tmp_path_factory.mktemp("migrated-pg"))
        made.migrate()
        made.engine.dispose()  # nobody may be connected to a template while it is copied
        yield url.rsplit("/", 1)[1]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Run the test once on SQLite and once on PostgreSQL. Where the test takes ``store``, the
    database is a copy of one migrated once per run (``migrated_*_template``)."""
    migrated = "store" in request.fixturenames
    if request.param == "sqlite":
        path = tmp_path / "jobs.db"
        if migrated:
            shutil.copyfile(request.getfixturevalue("migrated_sqlite_template"), path)
            path.chmod(0o600)
        yield f"sqlite:///{path}"
    elif migrated:
        with fresh_pg_database(template=request.getfixturevalue("migrated_pg_template")) as url:
            yield url
    else:
        yield request.getfixturevalue("pg_url")


@pytest.fixture
def store_factory(tmp_path: Path) -> Iterator[Callable[[str], JobStore]]:
    """Makes migrated stores (each with its own connection pool), disposed afterwards."""
    made: list[JobStore] = []

    def make(url: str) -> JobStore:
        store = JobStore.from_url(url, tmp_path)
        store.migrate()
        made.append(store)
        return store

    yield make
    for store in made:
        store.engine.dispose()


@pytest.fixture
def store(db_url: str, store_factory: Callable[[str], JobStore]) -> JobStore:
    return store_factory(db_url)


@pytest.fixture
def settings_factory(tmp_path: Path) -> Callable[..., Settings]:
    """Settings for the fake engine in a temp data dir; keyword overrides win."""

    def make(**overrides: Any) -> Settings:
        # workers=1, not the machine-sized default, so that figures derived from it (admission's
        # estimate) are the same on every machine.
        values: dict[str, Any] = {"data_dir": tmp_path / "data", "engine": "fake", "workers": 1}
        values.update(overrides)
        return Settings(**values)

    return make


# --- in-process API clients ------------------------------------------------------------


@pytest.fixture
def client_factory(
    settings_factory: Callable[..., Settings],
) -> Iterator[Callable[..., TestClient]]:
    """Started clients (lifespan ran, schema migrated), no worker and no reaper."""
    started: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        settings = settings_factory(**overrides)
        client = TestClient(create_app(settings, run_reaper=False))
        client.__enter__()
        started.append(client)
        key = admin_key(settings.data_dir)
        if key is not None:
            client.headers["Authorization"] = f"Bearer {key}"
        return client

    yield make
    for client in reversed(started):
        client.__exit__(None, None, None)


@pytest.fixture
def client(client_factory: Callable[..., TestClient]) -> TestClient:
    return client_factory()


# --- real service processes -------------------------------------------------------------


@pytest.fixture
def service_env(tmp_path: Path) -> Callable[..., dict[str, str]]:
    """Environment for a service process: a clean copy of ours plus STEADYVOICE_* values."""

    def make(data_dir: Path | None = None, **values: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYVOICE_")}
        env["STEADYVOICE_DATA_DIR"] = str(data_dir or tmp_path / "data")
        env["STEADYVOICE_METRICS_DIR"] = str(tmp_path / "metrics")
        env["STEADYVOICE_JOBS__POLL_INTERVAL_SECONDS"] = "0.2"
        # One worker and no loaded spare unless a test asks: the defaults size themselves to
        # the machine (and piper keeps a spare), which costs CPU that most tests do not need.
        env["STEADYVOICE_WORKERS"] = "1"
        env["STEADYVOICE_WORKER__SPARES"] = "0"
        env.update({f"STEADYVOICE_{k.upper()}": v for k, v in values.items()})
        return env

    return make


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[ServiceFactory]:
    """Start ``steadyvoice serve`` processes; every one is stopped at the end of the test."""
    started: list[Process] = []

    def start(env: dict[str, str], *args: str, ready: bool = True) -> Service:
        port = free_port()
        env = {**env, "STEADYVOICE_API__PORT": str(port)}
        svc = Service(env, tmp_path / f"serve-{len(started)}.log", port, list(args))
        svc.start()
        started.append(svc)
        svc.wait_up()
        if ready:
            svc.wait_ready()
        return svc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Process]]:
    """Start standalone ``steadyvoice worker`` processes, stopped at the end of the test."""
    started: list[Process] = []

    def start(env: dict[str, str]) -> Process:
        proc = Process(["worker"], env, tmp_path / f"worker-{len(started)}.log")
        proc.start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
