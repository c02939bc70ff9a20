"""A consistent copy of the job database, and the list of files it records, from one instant.

SQLite: the online backup API (``sqlite3.Connection.backup``) copies the database in one step
under a read transaction; in WAL mode that never blocks the service's writers, and the copy is
the database as of the transaction's start. The file list is then read from the copy itself.

PostgreSQL: a REPEATABLE READ transaction exports its snapshot (``pg_export_snapshot``);
``pg_dump --snapshot`` dumps exactly that snapshot while the same transaction reads the file
list. Either way the files listed are exactly the ones the snapshot's rows record.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.engine import make_url

from steadyvoice.backup.manifest import DatabaseKind
from steadyvoice.errors import BackupFailed, InvalidRequest, RestoreTargetNotEmpty
from steadyvoice.jobs.database import shown_url, sqlite_file
from steadyvoice.storage.local import fsync_dir
from steadyvoice.storage.modes import PRIVATE_FILE, make_private_dir

# What a backup must hold: succeeded jobs' audio not purged by retention, and every voice
# profile's reference (deleted profiles too: they are kept for history and audit).
JOB_FILES = (
    "SELECT id, output_name, sha256, size_bytes FROM jobs "
    "WHERE status = 'succeeded' AND purged_at IS NULL ORDER BY id"
)
VOICE_FILES = "SELECT id, reference_name, reference_sha256, reference_bytes FROM voices ORDER BY id"
REVISION = "SELECT version_num FROM alembic_version"
BUSY_MS = 30_000


@dataclass(frozen=True)
class Record:
    """A file a snapshot's rows record: area, storage name, recorded SHA-256 and size (None
    where an old row has none), owner's id."""

    area: Literal["outputs", "voices"]
    name: str
    sha256: str | None
    size: int | None
    owner: str


@dataclass(frozen=True)
class Snapshot:
    kind: DatabaseKind
    path: Path
    schema_revision: str | None
    records: list[Record]


def _read_records(cursor: Any) -> tuple[str | None, list[Record]]:
    cursor.execute(REVISION)
    row = cursor.fetchone()
    records = []
    cursor.execute(JOB_FILES)
    records += [Record("outputs", n, sha, size, job) for job, n, sha, size in cursor.fetchall()]
    cursor.execute(VOICE_FILES)
    records += [Record("voices", n, sha, size, voice) for voice, n, sha, size in cursor.fetchall()]
    return (None if row is None else str(row[0])), records


def take(url: str, workdir: Path) -> Snapshot:
    """Snapshot the database ``url`` names into ``workdir``."""
    path = sqlite_file(url)
    if path is not None:
        return _take_sqlite(path, workdir / "database.sqlite")
    return _take_postgresql(url, workdir / "database.pgdump")


def _sqlite(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_MS / 1000, isolation_level=None)
    # No connection to a steadyvoice database runs below synchronous=NORMAL (docs/backup.md).
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def _take_sqlite(source: Path, out: Path) -> Snapshot:
    if not source.is_file():
        raise BackupFailed(f"no database at {source}")
    with closing(_sqlite(source)) as src, closing(_sqlite(out)) as dst:
        src.backup(dst)  # one step (pages=-1): a single read transaction, so one instant
        # A standalone file: no -wal beside it to forget (serve turns WAL back on).
        dst.execute("PRAGMA journal_mode=DELETE")
        revision, records = _read_records(dst.cursor())
    os.chmod(out, PRIVATE_FILE)
    return Snapshot("sqlite", out, revision, records)


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """``url`` as libpq takes it, without the password, and the environment that carries the
    password (never on a command line, where ``ps`` shows it)."""
    parsed = make_url(url)
    env = {**os.environ}
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    bare = parsed.set(drivername="postgresql", password=None)
    return bare.render_as_string(hide_password=False), env


def _run(tool: str, args: Sequence[str], env: dict[str, str]) -> None:
    if shutil.which(tool) is None:
        raise BackupFailed(
            f"{tool} is not installed; install the PostgreSQL client "
            "(Debian: apt-get install postgresql-client; scripts/bootstrap.sh does it)"
        )
    done = subprocess.run([tool, *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise BackupFailed(f"{tool} failed: {reason}")


@contextmanager
def _pg(url: str) -> Iterator[Any]:
    import psycopg

    libpq, env = _libpq(url)
    try:
        conn = psycopg.connect(libpq, password=env.get("PGPASSWORD"), connect_timeout=10)
    except psycopg.Error as exc:
        raise BackupFailed(f"cannot connect to {shown_url(url)}: {exc}") from None
    with conn:
        yield conn


def _take_postgresql(url: str, out: Path) -> Snapshot:
    import psycopg

    libpq, env = _libpq(url)
    with _pg(url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_export_snapshot()")
            row = cur.fetchone()
            assert row is not None
            # The transaction stays open until pg_dump has attached to its snapshot and done.
            args = ["--format=custom", "--no-owner", "--no-privileges"]
            _run("pg_dump", [*args, f"--snapshot={row[0]}", f"--file={out}", libpq], env)
            revision, records = _read_records(cur)
        conn.rollback()
    os.chmod(out, PRIVATE_FILE)
    return Snapshot("postgresql", out, revision, records)


def occupant(url: str) -> str | None:
    """What is already in the database ``url`` names (a file, tables), or None if empty."""
    path = sqlite_file(url)
    if path is not None:
        present = [p for p in (path, Path(f"{path}-wal")) if p.exists()]
        return f"{present[0]} exists" if present else None
    with _pg(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_catalog.pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchone()
    tables = 0 if row is None else int(row[0])
    return f"{tables} tables in {shown_url(url)}" if tables else None


def check_kind(kind: DatabaseKind, url: str) -> None:
    """Refuse to restore a SQLite snapshot into PostgreSQL, or the other way round."""
    if (kind == "sqlite") != (sqlite_file(url) is not None):
        raise InvalidRequest(
            f"the backup holds a {kind} database but the target is {shown_url(url)}; "
            "set STEADYVOICE_DATABASE_URL to match"
        )


def restore(kind: DatabaseKind, snapshot: Path, url: str) -> None:
    """Load ``snapshot`` into the empty database ``url`` names (refused if not empty)."""
    check_kind(kind, url)
    target = sqlite_file(url)
    found = occupant(url)
    if found is not None:
        raise RestoreTargetNotEmpty(f"the target database is not empty: {found}", found=found)
    if target is None:
        libpq, env = _libpq(url)
        args = ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
        _run("pg_restore", [*args, f"--dbname={libpq}", str(snapshot)], env)
        return
    make_private_dir(target.parent)
    partial = target.with_name(f".{target.name}.restoring")
    shutil.copyfile(snapshot, partial)
    os.chmod(partial, PRIVATE_FILE)
    with partial.open("rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(partial, target)
    fsync_dir(target.parent)
