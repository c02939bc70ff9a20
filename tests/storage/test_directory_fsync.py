"""Every folder a write creates is made durable, and so is its entry in the folder above
(issue 21 item 6): the first output of a day, month or year survives a power cut."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from steadyvoice.storage.local import LocalStorage, make_dirs

pytestmark = pytest.mark.timeout(30)

DirSyncs = Callable[[], list[Path]]


@pytest.fixture
def dir_syncs(monkeypatch: pytest.MonkeyPatch) -> DirSyncs:
    """The folders fsynced since the last call, in order (file fsyncs are left out)."""
    synced: list[Path] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)

    def taken() -> list[Path]:
        done = list(synced)
        synced.clear()
        return done

    return taken


def test_a_first_of_year_write_fsyncs_each_new_folder_and_the_one_above_it(
    tmp_path: Path, dir_syncs: DirSyncs
) -> None:
    root = tmp_path / "outputs"
    storage = LocalStorage(root)
    storage.write_atomic("2026/12/31/output_a.wav", b"last of the year")
    dir_syncs()
    storage.write_atomic("2027/01/01/output_b.wav", b"first of the year")
    # Each folder's entry is fsynced in the folder above it, top down, before the file goes
    # in; the leaf once its file is renamed into it.
    assert dir_syncs() == [root, root / "2027", root / "2027/01", root / "2027/01/01"]
    assert (root / "2027/01/01/output_b.wav").read_bytes() == b"first of the year"


def test_existing_folders_cost_only_the_leaf_fsync(tmp_path: Path, dir_syncs: DirSyncs) -> None:
    root = tmp_path / "outputs"
    storage = LocalStorage(root)
    storage.write_atomic("2027/01/01/output_a.wav", b"a")
    dir_syncs()
    storage.write_atomic("2027/01/01/output_b.wav", b"b")
    assert dir_syncs() == [root / "2027/01/01"]
    storage.write_atomic("2027/01/02/output_c.wav", b"c")  # a new day in a known month
    assert dir_syncs() == [root / "2027/01", root / "2027/01/02"]


def test_a_missing_root_is_made_durable_too(tmp_path: Path, dir_syncs: DirSyncs) -> None:
    data = tmp_path / "data"
    data.mkdir()
    LocalStorage(data / "outputs").write_atomic("2027/01/01/output_a.wav", b"a")
    outputs = data / "outputs"
    assert dir_syncs() == [
        data,
        outputs,
        outputs / "2027",
        outputs / "2027/01",
        outputs / "2027/01/01",
    ]


def test_a_folder_made_by_a_concurrent_write_is_still_fsynced_above(
    tmp_path: Path, dir_syncs: DirSyncs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other writer may not have fsynced it yet when our record commits."""
    root = tmp_path / "outputs"
    root.mkdir()
    real_mkdir = Path.mkdir

    def raced(self: Path, *args: object, **kwargs: object) -> None:
        real_mkdir(self)  # the other writer got there first
        real_mkdir(self)  # so ours finds it there

    monkeypatch.setattr(Path, "mkdir", raced)
    make_dirs(root / "2027")
    assert dir_syncs() == [root]


def test_a_file_in_the_way_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "outputs"
    root.mkdir()
    (root / "2027").write_bytes(b"not a folder")
    with pytest.raises(FileExistsError):
        make_dirs(root / "2027" / "01")


def test_replace_fsyncs_the_folder(tmp_path: Path, dir_syncs: DirSyncs) -> None:
    root = tmp_path / "outputs"
    storage = LocalStorage(root)
    storage.write_atomic("2027/01/01/.tmp-staged", b"x")
    dir_syncs()
    storage.replace("2027/01/01/.tmp-staged", "2027/01/01/output_a.wav")
    assert dir_syncs() == [root / "2027/01/01"]
    assert not storage.exists("2027/01/01/.tmp-staged")
    assert storage.path("2027/01/01/output_a.wav").read_bytes() == b"x"
