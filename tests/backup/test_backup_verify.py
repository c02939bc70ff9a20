"""``backup create``, ``verify`` and ``restore`` in-process on SQLite, to a local folder and to
S3: incremental copies, a flipped byte and a missing file found, a non-empty target refused,
and what a snapshot taken with jobs in flight holds."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from backup_data import succeeded_jobs  # type: ignore[import-not-found]
from factories import new_job  # type: ignore[import-not-found]
from s3_server import S3Server  # type: ignore[import-not-found]

from steadyvoice.backup import catalog
from steadyvoice.backup.create import create
from steadyvoice.backup.destinations import LocalDestination, S3Destination
from steadyvoice.backup.restore import restore
from steadyvoice.backup.verify import verify
from steadyvoice.cli import main
from steadyvoice.errors import RestoreTargetNotEmpty
from steadyvoice.jobs.store import JobStore, Result
from steadyvoice.settings import Settings
from steadyvoice.storage.backend import open_storage

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def backed_up(
    tmp_path: Path,
    settings_factory: Callable[..., Settings],
    store_factory: Callable[[str], JobStore],
) -> tuple[Settings, JobStore, LocalDestination]:
    settings = settings_factory()
    settings.data_dir.mkdir()
    store = store_factory(settings.resolved_database_url)
    succeeded_jobs(store, settings, 5)
    return settings, store, LocalDestination(tmp_path / "backup")


def test_a_second_backup_copies_only_new_files_and_both_stay_restorable(
    backed_up: tuple[Settings, JobStore, LocalDestination],
) -> None:
    settings, store, dest = backed_up
    first, report = create(settings, dest)
    assert report.healthy and (report.copied, report.present, report.files) == (5, 0, 5)
    assert {f.job_id for f in first.files} == {j.id for j in store.succeeded()}
    succeeded_jobs(store, settings, 2)
    second, report = create(settings, dest)
    assert report.healthy and (report.copied, report.present, report.files) == (2, 5, 7)
    assert catalog.finished(dest) == [first.id, second.id]
    for manifest in (first, second):
        assert verify(dest, manifest.id).healthy
    cut = dest.root / first.files[0].key  # cut short: not the recorded size, so copied again
    cut.write_bytes(cut.read_bytes()[:100])
    _, report = create(settings, dest)
    assert (report.copied, report.present) == (1, 6) and verify(dest, first.id).healthy


def test_verify_finds_a_flipped_byte_and_a_missing_file(
    backed_up: tuple[Settings, JobStore, LocalDestination],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings, _store, dest = backed_up
    manifest, _ = create(settings, dest)
    flipped, gone = manifest.files[0], manifest.files[1]
    path = dest.root / flipped.key
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    (dest.root / gone.key).unlink()

    report = verify(dest)
    assert report.corrupt == [f"{flipped.label} ({flipped.key})"]
    assert report.missing == [f"{gone.label} ({gone.key})"]
    assert report.ok == report.checked - 2 and not report.healthy

    monkeypatch.setenv("STEADYVOICE_DATA_DIR", str(settings.data_dir))
    capsys.readouterr()
    assert main(["backup", "verify", str(dest.root)]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["healthy"] is False
    assert f"CORRUPT {flipped.label}" in err and f"MISSING {gone.label}" in err


def test_verify_on_s3_finds_a_flipped_byte_and_a_missing_object(
    backed_up: tuple[Settings, JobStore, LocalDestination], aws_env: S3Server
) -> None:
    settings, _store, _local = backed_up
    bucket = aws_env.new_bucket()
    dest = S3Destination(aws_env.client(), bucket, "nightly")
    manifest, report = create(settings, dest)
    assert report.healthy and report.copied == 5 and verify(dest).healthy
    flipped, gone = manifest.files[0], manifest.files[1]
    s3 = aws_env.client()
    body = bytearray(s3.get_object(Bucket=bucket, Key=f"nightly/{flipped.key}")["Body"].read())
    body[0] ^= 0x01
    s3.put_object(Bucket=bucket, Key=f"nightly/{flipped.key}", Body=bytes(body))
    s3.delete_object(Bucket=bucket, Key=f"nightly/{gone.key}")

    report = verify(dest)
    assert report.corrupt == [f"{flipped.label} ({flipped.key})"]
    assert report.missing == [f"{gone.label} ({gone.key})"]


def test_a_large_file_goes_to_s3_in_checksummed_parts_and_reads_back_whole(
    tmp_path: Path, aws_env: S3Server
) -> None:
    """No 5 GiB single PUT: a file above the part size is a multipart upload (5 MiB parts,
    S3's smallest), straight from its path; the bytes read back hash to the file's SHA-256."""
    bucket = aws_env.new_bucket()
    part = 5 * 1024 * 1024
    dest = S3Destination(aws_env.client(), bucket, "nightly", part_bytes=part)
    path = tmp_path / "snapshot.sqlite3"
    path.write_bytes(bytes(range(256)) * (2 * part // 256 + 1000))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert dest.put_file("snapshots/x/db.sqlite3", path, sha) == path.stat().st_size
    head = aws_env.client().head_object(Bucket=bucket, Key="nightly/snapshots/x/db.sqlite3")
    assert head["ETag"].strip('"').endswith("-3"), "a multipart upload of three parts"
    digest = hashlib.sha256()
    for block in dest.chunks("snapshots/x/db.sqlite3"):
        digest.update(block)
    assert digest.hexdigest() == sha


def test_a_corrupt_or_missing_database_snapshot_fails_verify(
    backed_up: tuple[Settings, JobStore, LocalDestination],
) -> None:
    settings, _store, dest = backed_up
    manifest, _ = create(settings, dest)
    key = f"snapshots/{manifest.id}/{manifest.database.name}"
    path = dest.root / key
    data = bytearray(path.read_bytes())
    data[100] ^= 0x80
    path.write_bytes(bytes(data))
    assert verify(dest).corrupt == [f"database {manifest.database.name} ({key})"]
    path.unlink()
    assert verify(dest).missing == [f"database {manifest.database.name} ({key})"]


def test_restore_refuses_a_target_that_is_not_empty(
    backed_up: tuple[Settings, JobStore, LocalDestination],
    settings_factory: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    settings, _store, dest = backed_up
    create(settings, dest)
    with pytest.raises(RestoreTargetNotEmpty, match=r"steadyvoice\.db exists"):
        restore(settings, dest)
    other = settings_factory(data_dir=tmp_path / "other")
    (other.outputs_dir / "2026").mkdir(parents=True)
    (other.outputs_dir / "2026" / "stray.wav").write_bytes(b"x")
    with pytest.raises(RestoreTargetNotEmpty, match=r"stray\.wav"):
        restore(other, dest)
    assert not (other.data_dir / "steadyvoice.db").exists()


def test_jobs_finished_after_the_snapshot_are_left_out_and_run_again_after_restore(
    backed_up: tuple[Settings, JobStore, LocalDestination],
    settings_factory: Callable[..., Settings],
    store_factory: Callable[[str], JobStore],
    tmp_path: Path,
) -> None:
    settings, store, dest = backed_up
    running, _ = store.create(new_job("Running at the snapshot."))
    claim = store.claim("backup-test", 0.001)  # its lease is over by the restore
    assert claim is not None and claim.job.id == running.id
    queued, _ = store.create(new_job("Queued at the snapshot."))
    manifest, _ = create(settings, dest)
    data = b"finished after the snapshot"
    open_storage(settings, "outputs").put(running.output_name, data)
    sha256 = hashlib.sha256(data).hexdigest()
    assert store.complete(claim, Result("fake-1+sr16000", 16_000, 1.0, sha256, len(data)))
    assert running.id not in {f.job_id for f in manifest.files}

    target = settings_factory(data_dir=tmp_path / "restored")
    restore(target, dest, manifest.id)
    restored = store_factory(target.resolved_database_url)
    assert restored.get(running.id).status == "running"
    assert restored.get(queued.id).status == "queued"
    assert not (target.outputs_dir / running.output_name).exists()
    assert restored.reap(max_attempts=3).requeued == [running.id]  # then it runs again
