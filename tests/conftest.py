"""Shared fixtures: real PostgreSQL databases, SQLite files, settings and in-process stores."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# `steadyvoice serve` exports PROMETHEUS_MULTIPROC_DIR to its children; prometheus_client picks
# its storage when first imported, so a value inherited from the shell (or a serve under test)
# must be gone before any test imports it, or in-process metrics would go to stray files.
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

import psycopg
import pytest

from steadyvoice.jobs.store import JobStore
from steadyvoice.settings import Settings

PG_ADMIN_URL = os.environ.get(
    "STEADYVOICE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
)


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
    name = f"sv_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"postgresql+psycopg://{base.split('://', 1)[1]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run the test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


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
        values: dict[str, Any] = {"data_dir": tmp_path / "data", "engine": "fake"}
        values.update(overrides)
        return Settings(**values)

    return make
