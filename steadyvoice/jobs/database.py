"""Database engine creation and schema migrations (Alembic), safe to call from many processes."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Engine, Select, create_engine, event, inspect, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import InstrumentedAttribute

from steadyvoice.jobs import pgguards
from steadyvoice.jobs.sqlite_writers import WriterConnection
from steadyvoice.settings import DatabaseSettings
from steadyvoice.storage.modes import create_private_file, make_private_dir

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported where it is used: a supervised worker, and every CLI command that does
# not migrate, would otherwise load it (a few hundred milliseconds) at each start.

_MIGRATION_LOCK_ID = 0x5736_0001


def newest_first(
    query: Select[Any],
    created: InstrumentedAttribute[datetime],
    ident: InstrumentedAttribute[str],
    before: tuple[datetime, str] | None,
    limit: int,
) -> Select[Any]:
    """One keyset page, newest first: ``before`` is the (created, id) of the prior page's last."""
    page = query.order_by(created.desc(), ident.desc()).limit(limit)
    if before is not None:
        at, last_id = before
        page = page.where((created < at) | ((created == at) & (ident < last_id)))
    return page


def make_engine(url: str, guards: DatabaseSettings | None = None) -> Engine:
    """A SQLAlchemy engine; SQLite gets WAL, a busy timeout and foreign keys, PostgreSQL the
    time limits of ``guards`` (``steadyvoice.jobs.pgguards``; the defaults if None)."""
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            make_private_dir(Path(path).parent)
        engine = create_engine(
            url,
            # A process's writers to the file queue on a lock, not in the busy handler's sleeps.
            connect_args={"timeout": 30, "factory": WriterConnection},
            # No ping before each use: a connection to a local file does not go stale, and the
            # extra SELECT was one more wait for the GIL on every checkout of a busy API.
            hide_parameters=True,
        )
        event.listen(engine, "do_connect", _sqlite_private_file)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    guards = guards or DatabaseSettings()
    engine = create_engine(
        url,
        pool_pre_ping=True,
        hide_parameters=True,  # error messages must never carry request text or consent
        pool_size=5,
        max_overflow=5,
        connect_args={"connect_timeout": 5, **pgguards.connect_args(url, guards)},
    )
    pgguards.install(engine, guards)
    return engine


def _sqlite_private_file(dialect: Any, _record: Any, args: Any, kwargs: Any) -> None:
    # Where connecting would create the database file, create it first, 0600: SQLite makes
    # it 0644 (less the umask), and its -wal and -shm files copy the database's mode.
    database = args[0] if args else kwargs.get("database")
    named = isinstance(database, str) and database not in ("", ":memory:")
    if named and not database.startswith("file:"):  # a URI names its own mode
        create_private_file(Path(database))


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy, not pysqlite, issue BEGIN so writers take the lock up front.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


READ_ONLY = "steadyvoice_read_only"


def _sqlite_begin_immediate(conn: Connection) -> None:
    # A transaction that may write takes the write lock up front (BEGIN IMMEDIATE) and so waits
    # for it, instead of failing later when a read snapshot cannot be upgraded. Read-only
    # transactions (engine.execution_options(steadyvoice_read_only=True)) stay deferred, so
    # readers never queue behind writers under WAL. A writer first waits for the process's
    # other writers to the file on a lock (steadyvoice.jobs.sqlite_writers).
    if conn.get_execution_options().get(READ_ONLY):
        conn.exec_driver_sql("BEGIN")
        return
    dbapi = conn.connection.dbapi_connection
    writer = dbapi if isinstance(dbapi, WriterConnection) else None
    left = writer.take_writer_lock() if writer is not None else 0.0
    shortened = writer is not None and left < writer.patience - 0.5
    try:
        if shortened:  # one deadline for both waits, not the busy timeout twice over
            conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(left * 1000)}")
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        finally:
            if shortened:
                assert writer is not None
                conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(writer.patience * 1000)}")
    except BaseException:
        if writer is not None:
            writer.release_writer_lock()
        raise


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "steadyvoice:migrations")
    cfg.attributes["connection"] = connection
    return cfg


SchemaStatus = Literal["missing", "current", "older", "newer"]


def schema_status(engine: Engine) -> SchemaStatus:
    """Where the database's schema stands against this version's migrations, read-only:
    ``missing`` (no steadyvoice schema), ``current``, ``older`` (``migrate`` upgrades it) or
    ``newer`` (a revision this version does not know: made by a later steadyvoice)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    with engine.execution_options(**{READ_ONLY: True}).connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return "missing"
        current = set(MigrationContext.configure(conn).get_current_heads())
    scripts = ScriptDirectory.from_config(alembic_config())
    if current == set(scripts.get_heads()):
        return "current"
    try:
        for revision in current:
            scripts.get_revision(revision)
    except CommandError:
        return "newer"
    return "older"


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names; ``None`` for another database or an in-memory one."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def shown_url(url: str) -> str:
    """``url`` fit for a message or a log: the password masked, password parameters left out."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url.split(":", 1)[0] + ":(unparseable URL)"
    query = {k: v for k, v in parsed.query.items() if "password" not in k.lower()}
    return parsed.set(query=query).render_as_string(hide_password=True)


@contextmanager
def _migration_lock(engine: Engine, lock_dir: Path | None) -> Iterator[Connection]:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            with pgguards.unbounded(conn):  # waiting for another migrator is no hang either
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK_ID})
                conn.commit()
                try:
                    yield conn
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK_ID})
                    conn.commit()
            return
        lock_path = (lock_dir or Path(".")) / ".migrate.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with lock_path.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield conn
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def migrate(engine: Engine, lock_dir: Path | None = None) -> None:
    """Bring the schema to the newest revision; concurrent callers wait for each other."""
    from alembic import command

    with _migration_lock(engine, lock_dir) as conn:
        command.upgrade(alembic_config(conn), "head")
        conn.commit()
