"""The ``s3`` backend against a real S3 HTTP endpoint (moto's server, tests/s3_server.py):
checksummed uploads the server checks, keys laid out like the data dir, and ``verify``
finding missing, corrupt and unrecorded objects without downloading them."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from factories import new_job  # type: ignore[import-not-found]
from s3_server import S3Server, storage_settings  # type: ignore[import-not-found]

from steadyvoice.engines.fake import FakeEngine
from steadyvoice.errors import StorageError
from steadyvoice.jobs.runner import run_claimed
from steadyvoice.jobs.store import JobStore
from steadyvoice.settings import FakeSettings, Settings
from steadyvoice.storage.backend import content_sha256, open_storage
from steadyvoice.storage.s3 import S3Storage
from steadyvoice.storage.verify import sweep_unrecorded, verify_outputs

pytestmark = pytest.mark.timeout(60)

NAME = "2026/12/07/output_20261207_101010_abcdefabcdef.wav"


@pytest.fixture
def s3_settings(
    aws_env: S3Server, settings_factory: Callable[..., Settings]
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        bucket = aws_env.new_bucket()
        return settings_factory(storage=storage_settings(aws_env, bucket, **overrides))

    return make


def _outputs(settings: Settings) -> S3Storage:
    storage = open_storage(settings, "outputs")
    assert isinstance(storage, S3Storage)
    return storage


def test_a_put_is_checksummed_and_keyed_like_the_data_dir(
    s3_settings: Callable[..., Settings], aws_env: S3Server
) -> None:
    settings = s3_settings()
    storage = _outputs(settings)
    data = b"RIFF" + bytes(range(256)) * 40
    sha = hashlib.sha256(data).hexdigest()
    assert storage.put(NAME, data) == (sha, len(data))

    head = aws_env.client().head_object(
        Bucket=settings.storage.s3_bucket, Key=f"sv/outputs/{NAME}", ChecksumMode="ENABLED"
    )
    assert base64.b64decode(head["ChecksumSHA256"]).hex() == sha
    info = storage.stat(NAME)
    assert info is not None and (info.size, info.sha256) == (len(data), sha)
    assert [o.name for o in storage.objects("2026/")] == [NAME]
    assert b"".join(storage.chunks(NAME, 1000)) == data
    assert content_sha256(storage, NAME) == sha

    storage.delete(NAME)
    assert storage.stat(NAME) is None and not storage.exists(NAME)
    with pytest.raises(FileNotFoundError):
        list(storage.chunks(NAME))


def test_the_server_refuses_a_body_that_does_not_match_its_checksum(
    s3_settings: Callable[..., Settings], aws_env: S3Server
) -> None:
    """What AWS does: 400 BadDigest, nothing stored. Through a plain client and through ours."""
    settings = s3_settings()
    bucket = settings.storage.s3_bucket
    declared = base64.b64encode(hashlib.sha256(b"the audio we made").digest()).decode()
    with pytest.raises(ClientError) as refused:
        aws_env.client().put_object(
            Bucket=bucket,
            Key="sv/outputs/raw.wav",
            Body=b"the audio, corrupted on the way",
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=declared,
        )
    assert refused.value.response["Error"]["Code"] == "BadDigest"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    storage = _outputs(settings)
    with pytest.raises(StorageError) as ours:
        storage.put(NAME, b"corrupted", sha256=hashlib.sha256(b"original").hexdigest())
    assert ours.value.code == "storage_error" and "BadDigest" in ours.value.message
    assert storage.stat(NAME) is None
    assert aws_env.client().list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_verify_on_s3_finds_missing_corrupt_and_unrecorded_without_downloading(
    s3_settings: Callable[..., Settings],
    store_factory: Callable[[str], JobStore],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = s3_settings()
    storage = _outputs(settings)
    store = store_factory(f"sqlite:///{tmp_path / 'jobs.db'}")
    engine = FakeEngine(FakeSettings())
    names = []
    for text in ("First one.", "Second one.", "Third one."):
        store.create(new_job(text))
        claim = store.claim("w:1", 30)
        assert claim is not None
        assert run_claimed(claim, engine, store, storage) == "succeeded"
        names.append(claim.job.output_name)
    ok, corrupt, missing = names
    storage.put(corrupt, b"other bytes, with a checksum of their own")
    storage.delete(missing)
    stray = "2026/01/01/output_20260101_000000_000000000000.wav"
    storage.put(stray, b"left by a crash before the record")

    def no_download(*_: Any, **__: Any) -> Any:
        raise AssertionError("verify downloaded an object the store has a checksum for")

    monkeypatch.setattr(S3Storage, "chunks", no_download)
    report = verify_outputs(store, storage)
    assert (report.checked, report.ok) == (3, 1)
    assert [label.split()[1] for label in report.corrupt] == [corrupt]
    assert [label.split()[1] for label in report.missing] == [missing]
    assert report.unrecorded == [stray] and report.temporary == []

    # The sweep removes what no job names (the grace period is 0 here), and nothing else.
    assert sweep_unrecorded(store, storage, older_than=0) == [stray]
    assert storage.stat(ok) is not None and storage.stat(corrupt) is not None
    assert verify_outputs(store, storage).unrecorded == []


def test_the_sweep_keeps_an_unrecorded_output_that_a_running_job_names(
    s3_settings: Callable[..., Settings], store_factory: Callable[[str], JobStore], tmp_path: Path
) -> None:
    """A crash between the copy and the commit: the job is running (to be retried), its object
    is unrecorded for now but must stay."""
    storage = _outputs(s3_settings())
    store = store_factory(f"sqlite:///{tmp_path / 'jobs.db'}")
    store.create(new_job())
    claim = store.claim("w:1", 30)
    assert claim is not None
    storage.put(claim.job.output_name, b"copied before the crash")
    assert verify_outputs(store, storage).unrecorded == [claim.job.output_name]
    assert sweep_unrecorded(store, storage, older_than=0) == []
    assert storage.exists(claim.job.output_name)
