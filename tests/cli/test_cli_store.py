"""Which database a command uses, said on stderr; commands that only read never make or change one.

On both databases: no schema is ``no_database``, an older or newer schema ``schema_not_current``
(exit 3), and the database is left as it was. ``keys create`` and ``voices add`` make and
upgrade it, as ``serve`` does.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from processes import run_cli  # type: ignore[import-not-found]
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from steadyvoice.jobs.database import alembic_config, make_engine, shown_url
from steadyvoice.jobs.store import JobStore

READERS = [["keys", "list"], ["voices", "list"], ["verify"], ["slo", "report"]]
NO_DATABASE = 3

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(tmp_path: Path, db_url: str) -> Cli:
    """``steadyvoice ARGS`` on this test's database (SQLite or PostgreSQL) and data dir."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        out: subprocess.CompletedProcess[str] = run_cli(
            list(args),
            tmp_path / "data",
            STEADYVOICE_DATABASE_URL=db_url,
            STEADYVOICE_ENGINE="fake",
        )
        return out

    return run


def _revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def _migrate_to(url: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            command.upgrade(alembic_config(conn), revision)
            conn.commit()
    finally:
        engine.dispose()


def _refused(out: subprocess.CompletedProcess[str], url: str, code: str) -> str:
    assert out.returncode == NO_DATABASE, out
    named, said = out.stderr.splitlines()
    assert named == f"steadyvoice: using database {shown_url(url)}"
    assert said.startswith(f"steadyvoice: error: {code}: "), said
    return said


def test_no_schema_is_no_database_and_stays_so(cli: Cli, db_url: str) -> None:
    if db_url.startswith("sqlite"):  # an empty file, as `sqlite3 path` leaves
        path = make_url(db_url).database
        assert path is not None
        Path(path).touch()
    for args in READERS:
        _refused(cli(*args), db_url, "no_database")
    assert _revision(db_url) is None


def test_an_older_schema_is_refused_until_a_writer_upgrades_it(cli: Cli, db_url: str) -> None:
    scripts = ScriptDirectory.from_config(alembic_config())
    [head] = scripts.get_heads()
    older = scripts.get_revision(head).down_revision
    assert isinstance(older, str)
    _migrate_to(db_url, older)
    for args in READERS:
        said = _refused(cli(*args), db_url, "schema_not_current")
        assert "older schema; `steadyvoice serve` upgrades it" in said
    assert _revision(db_url) == older

    made = cli("keys", "create", "--role", "admin", "--tenant", "default")
    assert made.returncode == 0, made.stderr
    assert _revision(db_url) == head
    listed = cli("keys", "list")
    assert listed.returncode == 0 and "admin" in listed.stdout, listed.stderr
    assert listed.stderr == f"steadyvoice: using database {shown_url(db_url)}\n"


def test_a_newer_schema_is_left_alone_by_every_command(
    cli: Cli, db_url: str, store_factory: Callable[[str], JobStore]
) -> None:
    store = store_factory(db_url)
    with store.session() as s:
        s.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    for args in [*READERS, ["keys", "create", "--role", "admin", "--tenant", "default"]]:
        said = _refused(cli(*args), db_url, "schema_not_current")
        assert "newer schema than steadyvoice" in said
    assert _revision(db_url) == "9999_from_the_future"


def test_a_postgresql_password_is_never_shown(pg_url: str, tmp_path: Path) -> None:
    url = make_url(pg_url).set(password="hunter2-secret")
    plain = url.render_as_string(hide_password=False)
    out = run_cli(
        ["keys", "list"], tmp_path / "data", STEADYVOICE_DATABASE_URL=plain + "?sslmode=disable"
    )
    assert "hunter2" not in out.stderr + out.stdout
    assert out.stderr.startswith("steadyvoice: using database postgresql+psycopg://postgres:***@")
    assert out.returncode in (NO_DATABASE, 1), out  # no schema, or the server wants no password
