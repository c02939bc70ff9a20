"""Temp files under outputs/ (writes in progress, attempts that were killed): ``verify`` lists
them without calling storage unhealthy, and ``serve``/``worker`` start sweeps the old ones."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from processes import run_cli  # type: ignore[import-not-found]

from steadyvoice.jobs.outputs import STALE_SECONDS, sweep
from steadyvoice.jobs.store import JobStore
from steadyvoice.settings import Settings
from steadyvoice.storage.local import LocalStorage
from steadyvoice.storage.verify import verify_outputs

pytestmark = pytest.mark.timeout(30)

OUTPUT = "2027/01/01/output_20270101_000000_0123456789ab.wav"
STAGED = "2027/01/01/.tmp-output_20270101_000000_0123456789ab.wav.attempt-1"
KILLED_WRITE = "2027/01/01/.tmp-k1ll3d0x"


def _age(storage: LocalStorage, name: str, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(storage.path(name), (then, then))


def _leftovers(storage: LocalStorage) -> None:
    for name in (STAGED, KILLED_WRITE):
        storage.path(name).parent.mkdir(parents=True, exist_ok=True)
        storage.path(name).write_bytes(b"partial")


def test_verify_lists_temp_files_but_stays_healthy(store: JobStore, tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "outputs")
    _leftovers(storage)
    report = verify_outputs(store, storage)
    assert sorted(report.temporary) == sorted([STAGED, KILLED_WRITE])
    assert report.unrecorded == [], "a temp file is not an unrecorded output"
    assert report.healthy


def test_sweep_removes_old_temp_files_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = LocalStorage(tmp_path / "outputs")
    _leftovers(storage)
    storage.write_atomic(OUTPUT, b"an output, however old")
    fresh = "2027/01/02/.tmp-being-written"
    storage.path(fresh).parent.mkdir(parents=True)
    storage.path(fresh).write_bytes(b"in progress")
    for name in (STAGED, KILLED_WRITE, OUTPUT):
        _age(storage, name, STALE_SECONDS + 60)
    caplog.set_level(logging.INFO, logger="steadyvoice")

    assert sorted(sweep(storage.root)) == sorted([STAGED, KILLED_WRITE])
    assert list(storage.temporary()) == [fresh]
    assert storage.exists(OUTPUT)
    [swept] = [r for r in caplog.records if getattr(r, "event", None) == "outputs.swept"]
    assert swept.__dict__["files"] == 2
    assert sweep(storage.root) == [], "nothing old is left"


def test_sweep_of_a_missing_or_unreadable_dir_never_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert sweep(tmp_path / "not-yet") == []

    def refused(self: LocalStorage, older_than: float, now: float | None = None) -> list[str]:
        raise PermissionError(13, "Permission denied", str(self.root))

    monkeypatch.setattr(LocalStorage, "sweep_temporary", refused)
    caplog.set_level(logging.INFO, logger="steadyvoice")
    assert sweep(tmp_path) == []  # logged; the start goes on
    assert [getattr(r, "event", None) for r in caplog.records] == ["outputs.sweep_failed"]


def test_cli_verify_json_lists_temp_files_and_exits_0(
    settings_factory: Callable[..., Settings], store_factory: Callable[[str], JobStore]
) -> None:
    settings = settings_factory()
    store_factory(settings.resolved_database_url)  # an empty, migrated database
    storage = LocalStorage(settings.outputs_dir)
    _leftovers(storage)
    done = run_cli(["verify", "--json"], settings.data_dir, STEADYVOICE_ENGINE="fake")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert sorted(report["temporary"]) == sorted([STAGED, KILLED_WRITE])
    assert report["healthy"] is True and report["unrecorded"] == []
