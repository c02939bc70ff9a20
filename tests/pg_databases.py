"""Throw-away PostgreSQL databases on the local test server (fixture ``pg_url`` and tests that
need a second one, such as a restore target)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

PG_ADMIN_URL = os.environ.get(
    "STEADYVOICE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def fresh_pg_database(template: str | None = None) -> Iterator[str]:
    """A fresh PostgreSQL database on the local server (its URL), dropped afterwards: empty, or
    a copy of the database named ``template`` (which nobody may be connected to meanwhile)."""
    name = f"sv_test_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy}')
    try:
        yield pg_database_url(name)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_database_url(name: str) -> str:
    """The SQLAlchemy URL of database ``name`` on the test server."""
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"postgresql+psycopg://{base.split('://', 1)[1]}/{name}"
