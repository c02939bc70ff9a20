"""The ``s3`` backend's edges: the publish copy held short inside the transaction, staged objects
under a prefix of their own (the start-up sweep never lists the bucket), stalled requests
retried as transient, and DEBUG logging that never shows a credential."""

from __future__ import annotations

import hashlib
import io
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from factories import new_job  # type: ignore[import-not-found]
from s3_server import (  # type: ignore[import-not-found]
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    S3Server,
    storage_settings,
)

from steadyvoice.errors import StorageError, StorageUnavailable
from steadyvoice.jobs.outcome import record_success
from steadyvoice.jobs.outputs import stage, staged_name, sweep
from steadyvoice.jobs.states import JobStatus
from steadyvoice.jobs.store import JobStore, Result
from steadyvoice.jobs.watch import ClaimWatch
from steadyvoice.observability.logs import SDK_LOGGERS, configure_logging
from steadyvoice.settings import Settings
from steadyvoice.storage.backend import ObjectInfo, open_storage
from steadyvoice.storage.s3 import PUBLISH_TIMEOUT_SECONDS, S3Storage

pytestmark = pytest.mark.timeout(60)

NAME = "2026/12/07/output_20261207_101010_abcdefabcdef.wav"
TOKEN = "FwoGZXIvYXdzEJr-session-token-that-must-never-be-logged"


def _outputs(settings: Settings) -> S3Storage:
    storage = open_storage(settings, "outputs")
    assert isinstance(storage, S3Storage)
    return storage


def _s3(server: S3Server, settings_factory: Callable[..., Settings], **overrides: Any) -> Settings:
    return settings_factory(storage=storage_settings(server, server.new_bucket(), **overrides))


def test_staged_objects_live_under_a_prefix_the_sweep_lists_alone(
    aws_env: S3Server, settings_factory: Callable[..., Settings]
) -> None:
    settings = _s3(aws_env, settings_factory)
    storage = _outputs(settings)
    staged = staged_name(NAME, 2)
    storage.put(staged, b"RIFF staged")
    storage.put(NAME, b"RIFF recorded")
    keys = {
        o["Key"]
        for o in aws_env.client().list_objects_v2(Bucket=settings.storage.s3_bucket)["Contents"]
    }
    assert keys == {f"sv/staging/outputs/{staged}", f"sv/outputs/{NAME}"}
    assert [o.name for o in storage.objects()] == sorted([staged, NAME])  # verify sees both
    assert [o.name for o in storage.temporaries()] == [staged]

    class NoFullListing(S3Storage):
        def objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
            raise AssertionError("the sweep listed every output")

    only_staging = NoFullListing(
        storage.client, storage.bucket, storage.prefix, local_root=settings.data_dir
    )
    assert sweep(only_staging, older_than=0) == [staged]
    assert [o.name for o in storage.objects()] == [NAME]


def test_the_publish_copy_is_one_short_try_and_the_job_stays_running(
    own_s3_server: S3Server,
    settings_factory: Callable[..., Settings],
    store: JobStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The copy runs inside the transaction that records the job: a store that stops
    answering fails the commit after one short try, nothing is recorded, and the job is left
    running for the reaper to requeue (not failed)."""
    for key, value in own_s3_server.env().items():
        monkeypatch.setenv(key, value)
    settings = _s3(own_s3_server, settings_factory, s3_timeout_seconds=30.0)
    storage = _outputs(settings)
    timeouts = storage.publish_client.meta.config
    assert (timeouts.read_timeout, timeouts.connect_timeout) == (PUBLISH_TIMEOUT_SECONDS,) * 2
    assert storage.client.meta.config.read_timeout == 30.0  # uploads keep theirs

    job, _ = store.create(new_job("Published while the store is away."))
    claim = store.claim("w:1", 60)
    assert claim is not None and claim.job.id == job.id
    data = b"RIFF" + bytes(range(256)) * 8
    staged = stage(storage, claim, data)
    result = Result("fake-1", 16_000, 1.0, staged.sha256, staged.size)
    storage.publish_client = _client_with_timeout(own_s3_server, 1.0)  # a test-sized timeout
    copies = _count_calls(storage.publish_client, "CopyObject")
    own_s3_server.pause()
    try:
        started = time.monotonic()
        status = record_success(claim, store, staged, result, ClaimWatch(store, claim))
        took = time.monotonic() - started
    finally:
        own_s3_server.resume()
    assert status == JobStatus.RUNNING.value and took < 10
    assert copies == [1], "one try, no retry inside the transaction"
    after = store.get(job.id)
    assert after.status == JobStatus.RUNNING.value and after.sha256 is None


def _client_with_timeout(server: S3Server, seconds: float) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=seconds, read_timeout=seconds, retries={"total_max_attempts": 1}
    )
    return boto3.client(
        "s3",
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=config,
    )


def _count_calls(client: Any, operation: str) -> list[int]:
    calls = [0]

    def count(**_: Any) -> None:
        calls[0] += 1

    client.meta.events.register(f"before-send.s3.{operation}", count)
    return calls


class _Refusing:
    """A stand-in S3 client whose every call answers ``code`` (as a 400)."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.calls = 0

    def _answer(self, **_: Any) -> Any:
        self.calls += 1
        response: Any = {
            "Error": {"Code": self.code, "Message": "stalled"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        raise ClientError(response, "PutObject")

    put_object = delete_object = head_object = get_object = _answer


@pytest.mark.parametrize("code", ["RequestTimeout", "IncompleteBody"])
def test_a_stalled_request_is_retried_then_storage_unavailable(code: str, tmp_path: Path) -> None:
    client = _Refusing(code)
    storage = S3Storage(client, "b", "sv/outputs/", local_root=tmp_path, retries=2, backoff=0)
    with pytest.raises(StorageUnavailable):
        storage.put(NAME, b"RIFF")
    assert client.calls == 3
    with pytest.raises(StorageUnavailable):
        storage.stat(NAME)
    with pytest.raises(StorageUnavailable):
        list(storage.chunks(NAME))


def test_a_bad_digest_is_refused_at_once(tmp_path: Path) -> None:
    client = _Refusing("BadDigest")
    storage = S3Storage(client, "b", "sv/outputs/", local_root=tmp_path, retries=2, backoff=0)
    with pytest.raises(StorageError) as refused:
        storage.put(NAME, b"RIFF")
    assert not isinstance(refused.value, StorageUnavailable) and client.calls == 1


def test_debug_logging_never_shows_credentials(
    aws_env: S3Server,
    settings_factory: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    settings = _s3(aws_env, settings_factory)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in SDK_LOGGERS}
    out = io.StringIO()
    try:
        configure_logging("DEBUG", "worker", "json", stream=out)
        storage = _outputs(settings)
        data = b"RIFF debug"
        assert storage.put(NAME, data) == (hashlib.sha256(data).hexdigest(), len(data))
        logging.getLogger("steadyvoice.test").debug("after the put")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    logged = out.getvalue()
    assert "after the put" in logged, "DEBUG lines are written"
    for secret in (ACCESS_KEY, SECRET_KEY, TOKEN):
        assert secret not in logged
