"""A process's writers to one SQLite file queue on one lock (steadyvoice.jobs.sqlite_writers).

Every engine on the file shares it (the store's and the rate limiter's), a write transaction
holds it until it commits, rolls back or its connection closes, and reads never take it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from steadyvoice.jobs.database import READ_ONLY, make_engine
from steadyvoice.jobs.sqlite_writers import WriterConnection, writer_lock

pytestmark = pytest.mark.timeout(60)


def _engine(path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
    return engine


def test_a_write_transaction_holds_the_files_lock_until_it_ends(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "a.db")
    lock = writer_lock(str(tmp_path / "a.db"))
    assert lock is not None and not lock.locked()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
        assert lock.locked()
    assert not lock.locked()  # committed
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (2)"))
        assert lock.locked()
        raise RuntimeError("roll back")
    assert not lock.locked()  # rolled back
    with engine.execution_options(**{READ_ONLY: True}).begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
        assert not lock.locked()  # a read takes no lock
    conn = engine.connect()
    conn.execute(text("INSERT INTO t VALUES (3)"))
    assert lock.locked()
    conn.invalidate()  # the connection is closed mid-transaction
    assert not lock.locked()
    engine.dispose()


def test_engines_on_one_file_share_its_lock_and_take_turns(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    first, second = _engine(tmp_path / "real" / "j.db"), _engine(tmp_path / "link" / "j.db")
    assert writer_lock(str(tmp_path / "real" / "j.db")) is writer_lock(
        str(tmp_path / "link" / "j.db")
    )
    assert writer_lock(":memory:") is None and writer_lock(str(tmp_path / "b.db")) is not None
    began = threading.Event()
    order: list[str] = []

    def other_writer() -> None:
        began.wait()
        with second.begin() as conn:  # waits on the lock, not in SQLite's busy handler
            order.append("second")
            conn.execute(text("INSERT INTO t VALUES (2)"))

    thread = threading.Thread(target=other_writer)
    thread.start()
    with first.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
        began.set()
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:  # the other writer had time to start, and waits
            assert not order
            time.sleep(0.01)
        order.append("first")
    thread.join(timeout=30)
    assert order == ["first", "second"]
    with first.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 2
    first.dispose()
    second.dispose()


def test_the_lock_and_the_busy_handler_share_one_deadline(tmp_path: Path) -> None:
    """A writer that waited on the lock leaves BEGIN IMMEDIATE only what is left of its busy
    timeout, so a failing write fails after the timeout once, not twice over."""
    path = str(tmp_path / "d.db")
    holder = sqlite3.connect(path, timeout=1.0, factory=WriterConnection)
    waiter = sqlite3.connect(path, timeout=1.0, factory=WriterConnection, check_same_thread=False)
    try:
        assert holder.take_writer_lock() == pytest.approx(1.0, abs=0.2)  # free: all of it left
        began = time.monotonic()
        left = waiter.take_writer_lock()  # held by the other connection: waits it all out
        assert time.monotonic() - began >= 0.9 and left < 0.2
    finally:
        holder.close()
        waiter.close()
    assert writer_lock(path) is not None and not writer_lock(path).locked()  # type: ignore[union-attr]
