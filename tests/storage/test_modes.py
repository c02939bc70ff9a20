"""Private file modes (issue 22, item 6): what is created, and what verify names."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from factories import new_job  # type: ignore[import-not-found]

from steadyvoice.jobs.database import make_engine, migrate
from steadyvoice.jobs.store import JobStore, Result
from steadyvoice.settings import Settings, prepare_data_dir
from steadyvoice.storage.local import LocalStorage
from steadyvoice.storage.modes import create_private_file, loose_mode, loose_modes
from steadyvoice.storage.verify import verify_modes, verify_outputs


@pytest.fixture(autouse=True)
def _usual_umask() -> Iterator[None]:
    old = os.umask(0o022)  # what a login shell has: new files 0644, folders 0755
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_sqlite_database_and_its_folder_are_private(tmp_path: Path) -> None:
    db = tmp_path / "new" / "steadyvoice.db"
    engine = make_engine(f"sqlite:///{db}")
    with engine.connect() as conn:  # WAL: -wal and -shm exist while a connection is open
        migrate(engine, tmp_path)
        conn.exec_driver_sql("SELECT 1")
        for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            assert mode(path) == 0o600, path
    engine.dispose()
    assert mode(db.parent) == 0o700


def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    db.touch(mode=0o640)
    db.chmod(0o640)
    engine = make_engine(f"sqlite:///{db}")
    migrate(engine, tmp_path)
    engine.dispose()
    assert mode(db) == 0o640  # named by serve and verify, never changed behind one's back
    assert loose_mode(db, 0o600) is not None


def test_the_data_dir_is_made_private(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    prepare_data_dir(settings)
    assert mode(settings.data_dir) == 0o700


def test_create_private_file_leaves_an_existing_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("kept")
    create_private_file(path)
    assert path.read_text() == "kept"


def test_loose_modes_names_each_reachable_file_with_its_fix(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory()
    prepare_data_dir(settings)
    db = settings.data_dir / "steadyvoice.db"
    create_private_file(db)
    key = settings.resolved_admin_key_file
    create_private_file(key)
    assert loose_modes(settings, db) == []
    settings.data_dir.chmod(0o750)
    key.chmod(0o604)
    found = {loose.path: str(loose) for loose in loose_modes(settings, db)}
    assert set(found) == {settings.data_dir, key}
    assert found[key] == (f"{key} is 0604, readable by other users; want 0600 (chmod 600 {key})")


def test_verify_names_loose_outputs_and_store_files(
    settings_factory: Callable[..., Settings], store_factory: Callable[[str], JobStore]
) -> None:
    settings = settings_factory()
    store = store_factory(settings.resolved_database_url)
    storage = LocalStorage(settings.outputs_dir)
    job, _ = store.create(new_job("Hello."))
    claim = store.claim("w1", 30)
    assert claim is not None
    sha, size = storage.write_atomic(job.output_name, b"RIFF audio")
    assert store.complete(claim, Result("fake-1", 16_000, 0.5, sha, size))
    report = verify_outputs(store, storage)
    assert report.loose == [] and report.healthy
    storage.path(job.output_name).chmod(0o644)
    db = settings.data_dir / "steadyvoice.db"
    db.chmod(0o644)
    report = verify_modes(settings, db, verify_outputs(store, storage))
    assert report.healthy  # a warning, not a failure
    assert [line.split(" is ")[0] for line in report.loose] == [
        str(storage.path(job.output_name)),
        str(db),
    ]
