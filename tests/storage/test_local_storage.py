"""Atomic output writes, and ``verify`` finding missing, corrupt and unrecorded outputs."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from factories import new_job  # type: ignore[import-not-found]

from steadyvoice.jobs.store import JobStore, NewJob, Result
from steadyvoice.settings import Settings
from steadyvoice.storage.local import LocalStorage, sha256_file
from steadyvoice.storage.verify import verify_outputs

NAME = "2024/03/05/output_20240305_070809_0123456789ab.wav"


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def succeed(store: JobStore, storage: LocalStorage, text: str) -> str:
    """A job taken through create -> claim -> complete, its output written for real."""
    job, _ = store.create(new_job(text))
    claim = store.claim("w1", 30)
    assert claim is not None and claim.job.id == job.id
    sha, size = storage.write_atomic(job.output_name, f"RIFF audio for {text}".encode())
    result = Result(
        engine_version="fake-1",
        sample_rate=16_000,
        duration_seconds=0.5,
        sha256=sha,
        size_bytes=size,
    )
    assert store.complete(claim, result)
    return job.output_name


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))


# --- LocalStorage -------------------------------------------------------------------------


def test_write_atomic_reports_the_hash_and_size(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "outputs")
    data = os.urandom(3 * 1024 * 1024 + 17)  # more than one hashing chunk
    sha, size = storage.write_atomic(NAME, data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert size == len(data)
    path = storage.path(NAME)
    assert path == tmp_path / "outputs" / "2024" / "03" / "05" / path.name
    assert path.read_bytes() == data
    assert sha256_file(path) == sha
    assert storage.exists(NAME)


def test_write_atomic_creates_parents_and_leaves_no_temp_files(tmp_path: Path) -> None:
    root = tmp_path / "outputs"
    storage = LocalStorage(root)
    storage.write_atomic(NAME, b"first")
    storage.write_atomic(NAME, b"second")
    storage.write_atomic("flat_output.wav", b"x")
    assert files_under(root) == [NAME, "flat_output.wav"]
    assert storage.path(NAME).read_bytes() == b"second"


def test_a_failed_write_leaves_no_temp_file(tmp_path: Path) -> None:
    root = tmp_path / "outputs"
    storage = LocalStorage(root)
    storage.path(NAME).mkdir(parents=True)  # the target is a directory: rename must fail
    with pytest.raises(OSError):
        storage.write_atomic(NAME, b"data")
    assert files_under(root) == []


@pytest.mark.parametrize(
    "name", ["..", "../escape.wav", "a/../../escape.wav", "/etc/passwd", "", "."]
)
def test_names_outside_the_root_are_refused(tmp_path: Path, name: str) -> None:
    storage = LocalStorage(tmp_path / "outputs")
    with pytest.raises(ValueError, match="not a storage name"):
        storage.write_atomic(name, b"data")
    with pytest.raises(ValueError):
        storage.path(name)
    assert not (tmp_path / "escape.wav").exists()


def test_names_lists_outputs_only_and_delete_removes(tmp_path: Path) -> None:
    root = tmp_path / "outputs"
    storage = LocalStorage(root)
    assert list(storage.names()) == []
    storage.write_atomic(NAME, b"a")
    storage.write_atomic("2024/01/01/output_b.wav", b"b")
    (root / "2024" / ".tmp-leftover").write_bytes(b"partial")
    (root / "notes.txt").write_bytes(b"not an output")
    assert list(storage.names()) == ["2024/01/01/output_b.wav", NAME]
    storage.delete(NAME)
    storage.delete(NAME)  # already gone: fine
    assert not storage.exists(NAME)
    assert storage.free_bytes() > 0
    assert LocalStorage(tmp_path / "not" / "yet").free_bytes() > 0


# --- verify -------------------------------------------------------------------------------


def test_verify_is_healthy_when_every_file_matches(store: JobStore, tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "outputs")
    for n in range(3):
        succeed(store, storage, f"text {n}")
    report = verify_outputs(store, storage)
    assert (report.checked, report.ok) == (3, 3)
    assert report.missing == report.corrupt == report.unrecorded == []
    assert report.healthy


def test_verify_reports_missing_corrupt_and_unrecorded(store: JobStore, tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "outputs")
    fine = succeed(store, storage, "fine")
    gone = succeed(store, storage, "gone")
    broken = succeed(store, storage, "broken")
    storage.delete(gone)
    flip_a_byte(storage.path(broken))
    storage.write_atomic("2024/01/01/output_x.wav", b"nobody recorded me")
    report = verify_outputs(store, storage)
    assert report.checked == 3 and report.ok == 1
    assert [item.split(" ", 1)[1] for item in report.missing] == [gone]
    assert [item.split(" ", 1)[1] for item in report.corrupt] == [broken]
    assert report.unrecorded == ["2024/01/01/output_x.wav"]
    assert fine not in " ".join(report.missing + report.corrupt)
    assert not report.healthy


def test_unrecorded_files_alone_do_not_make_storage_unhealthy(
    store: JobStore, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "outputs")
    succeed(store, storage, "fine")
    storage.write_atomic("output_x.wav", b"stray")
    report = verify_outputs(store, storage)
    assert report.unrecorded == ["output_x.wav"] and report.healthy


def test_only_succeeded_jobs_are_checked(store: JobStore, tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "outputs")
    store.create(NewJob("queued", "alpha", "fake", "fake-1", {"format": "wav"}, "anonymous", 600.0))
    report = verify_outputs(store, storage)
    assert report.checked == 0 and report.healthy


# --- the CLI ------------------------------------------------------------------------------


def run_verify(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYVOICE_")}
    env["STEADYVOICE_DATA_DIR"] = str(settings.data_dir)
    env["STEADYVOICE_ENGINE"] = "fake"
    return subprocess.run(
        [sys.executable, "-m", "steadyvoice", "verify", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_verify_exit_codes(
    settings_factory: Callable[..., Settings],
    store_factory: Callable[[str], JobStore],
) -> None:
    settings = settings_factory()
    store = store_factory(settings.resolved_database_url)
    storage = LocalStorage(settings.outputs_dir)
    good = succeed(store, storage, "good")
    bad = succeed(store, storage, "bad")

    healthy = run_verify(settings)
    assert healthy.returncode == 0, healthy.stderr
    assert "checked 2: 2 ok, 0 missing, 0 corrupt, 0 unrecorded" in healthy.stdout

    flip_a_byte(storage.path(bad))
    broken = run_verify(settings)
    assert broken.returncode == 1, broken.stderr
    lines = broken.stdout.splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["CORRUPT"]
    assert lines[1].endswith(f" {bad}")
    assert good not in broken.stdout
    assert "Traceback" not in broken.stderr

    as_json = run_verify(settings, "--json")
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert report["healthy"] is False and report["checked"] == 2 and report["ok"] == 1
    assert len(report["corrupt"]) == 1 and report["corrupt"][0].endswith(bad)
