"""The ``s3`` backend: objects in any S3-compatible store (AWS S3, MinIO, Ceph RGW, Garage).

boto3 is the client: AWS's own, kept in step with the S3 API (flexible checksums, the standard
credential chain, presigning), and already what operators' tooling uses. Credentials come
only from that chain (environment, shared config files, the instance or task role); nothing
here reads, stores or logs them.

Every PUT carries ``x-amz-checksum-sha256`` (``ChecksumAlgorithm=SHA256`` with the value we
computed), so the store recomputes the digest of what it received and refuses a body that
differs (400 ``BadDigest``) instead of keeping a corrupted object; the object then reports
that checksum (``HeadObject`` with ``ChecksumMode=ENABLED``), which is how ``verify`` checks an
object without downloading it. A PUT the store acknowledged is durable (S3's contract).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from steadyvoice.errors import StorageError, StorageFull, StorageUnavailable
from steadyvoice.observability.logs import event
from steadyvoice.storage.backend import CHUNK, Area, ObjectInfo
from steadyvoice.storage.local import TEMP_PREFIX, LocalStorage
from steadyvoice.storage.reachability import Reachability

if TYPE_CHECKING:
    from steadyvoice.settings import StorageSettings

log = logging.getLogger("steadyvoice.storage")

T = TypeVar("T")
MAX_BACKOFF = 30.0
NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
# What stores answer when a bucket quota or the disks behind it are full (MinIO, Ceph RGW).
FULL = frozenset({"XMinioStorageFull", "QuotaExceeded", "InsufficientStorage"})
# Answers that no retry will change: the body or the request itself is wrong.
REFUSED = frozenset({"BadDigest", "InvalidDigest", "InvalidRequest", "AccessDenied"})
# 400s that a retry does change: the connection stalled mid-body (the store gave up waiting
# for it, or got less than Content-Length). Retried like no answer, then storage_unavailable.
TRANSIENT = frozenset({"RequestTimeout", "IncompleteBody"})
# The server-side copy that publishes an output runs inside the transaction that records the
# job (holding its row, on SQLite the database's write lock): one try, this long at most, far
# under busy_timeout (30 s) and the lease. A copy that does not finish in time fails the
# commit; the job stays running and is retried (docs/storage.md).
PUBLISH_TIMEOUT_SECONDS = 5.0


def b64_sha256(hex_digest: str) -> str:
    """The SHA-256 as S3 spells it (base64 of the digest) from our hex spelling."""
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def hex_sha256(value: str | None) -> str | None:
    """S3's base64 SHA-256 as hex; None for none, or for a multipart object's checksum of
    checksums (``…-N``), which is not the SHA-256 of the content."""
    if not value or "-" in value:
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 32 else None


def staging_prefix(area_prefix: str) -> str:
    """``<prefix>/staging/<area>/`` for the area's ``<prefix>/<area>/``."""
    base, _, area = area_prefix.rstrip("/").rpartition("/")
    return f"{base}/staging/{area}/" if base else f"staging/{area}/"


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _client_error(what: str, exc: ClientError) -> StorageError:
    code = error_code(exc)
    if code in TRANSIENT:
        return StorageUnavailable(f"{what}: the object store answered {code}")
    return StorageError(f"{what}: {code}")


def _client(session: boto3.session.Session, settings: StorageSettings, timeout: float) -> Any:
    config = Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        # One try per call: our own retries (with backoff we control) wrap the uploads.
        retries={"total_max_attempts": 1, "mode": "standard"},
        # Only the checksums we send (SHA-256), not a CRC32 of botocore's choosing.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return session.client(
        "s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region, config=config
    )


class S3Storage:
    """An area (``outputs`` or ``voices``) of a bucket: key ``<prefix>/<area>/<name>``; a
    temp name (an attempt's staged output, ``…/.tmp-…``) is keyed
    ``<prefix>/staging/<area>/<name>`` instead, so that the start-up sweep lists the staged
    objects alone, never the whole area (tens of millions of outputs)."""

    kind = "s3"

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str,
        *,
        local_root: Path,
        retries: int = 4,
        backoff: float = 0.5,
        check_seconds: float = 15.0,
        publish_client: Any = None,
    ) -> None:
        self.client = client
        self.publish_client = client if publish_client is None else publish_client
        self.bucket = bucket
        self.prefix = prefix  # "" or ending in "/"
        self.staging = staging_prefix(prefix)
        self.retries = retries
        self.backoff = backoff
        self._local = LocalStorage(local_root)  # free disk for readiness: the data dir's
        self._reachability = Reachability(self._check, check_seconds)

    @classmethod
    def from_settings(cls, settings: StorageSettings, area: Area, data_dir: Path) -> S3Storage:
        session = boto3.session.Session()
        client = _client(session, settings, settings.s3_timeout_seconds)
        publish = min(settings.s3_timeout_seconds, PUBLISH_TIMEOUT_SECONDS)
        base = (settings.s3_prefix or "").strip("/")
        prefix = f"{base}/{area}/" if base else f"{area}/"
        assert settings.s3_bucket  # the settings refuse backend=s3 without one
        return cls(
            client,
            settings.s3_bucket,
            prefix,
            local_root=data_dir,
            retries=settings.upload_retries,
            backoff=settings.upload_backoff_seconds,
            check_seconds=settings.s3_check_seconds,
            publish_client=_client(session, settings, publish),
        )

    def key(self, name: str) -> str:
        if not name or name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"not a storage name: {name!r}")
        temporary = name.rpartition("/")[2].startswith(TEMP_PREFIX)
        return (self.staging if temporary else self.prefix) + name

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def put(self, name: str, data: bytes, sha256: str | None = None) -> tuple[str, int]:
        """PUT with ``x-amz-checksum-sha256``; retried with backoff while the store does not
        answer (then ``storage_unavailable``). Durable once it returns."""
        digest = sha256 or hashlib.sha256(data).hexdigest()
        self._retried(
            "put",
            name,
            lambda: self.client.put_object(
                Bucket=self.bucket,
                Key=self.key(name),
                Body=data,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=b64_sha256(digest),
            ),
        )
        return digest, len(data)

    def replace(self, name: str, new_name: str) -> None:
        """Server-side copy (no bytes through us), the copy's SHA-256 computed by the store.

        It runs inside the transaction that records the job (:mod:`steadyvoice.jobs.outputs`),
        holding the job's row: one try on a client whose timeouts are
        :data:`PUBLISH_TIMEOUT_SECONDS` at most, never the upload's retries and backoff.
        """
        self._retried(
            "copy",
            new_name,
            lambda: self.publish_client.copy_object(
                Bucket=self.bucket,
                Key=self.key(new_name),
                CopySource={"Bucket": self.bucket, "Key": self.key(name)},
                ChecksumAlgorithm="SHA256",
            ),
            retries=0,
        )

    def chunks(self, name: str, size: int = CHUNK) -> Iterator[bytes]:
        body = self._get(name)["Body"]
        try:
            yield from body.iter_chunks(size)
        except BotoCoreError as exc:
            raise StorageUnavailable(f"reading {name} from the object store: {exc}") from exc
        finally:
            body.close()

    def _get(self, name: str) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = self.client.get_object(Bucket=self.bucket, Key=self.key(name))
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                raise FileNotFoundError(name) from exc
            raise _client_error(f"reading {name}", exc) from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"reading {name} from the object store: {exc}") from exc
        return answer

    def stat(self, name: str) -> ObjectInfo | None:
        try:
            head = self.client.head_object(
                Bucket=self.bucket, Key=self.key(name), ChecksumMode="ENABLED"
            )
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                return None
            raise _client_error(f"stat {name}", exc) from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"stat {name}: {exc}") from exc
        return ObjectInfo(
            name,
            int(head["ContentLength"]),
            hex_sha256(head.get("ChecksumSHA256")),
            head["LastModified"].timestamp(),
        )

    def objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        areas = self._listed(self.prefix, prefix), self.temporaries(prefix)
        return heapq.merge(*areas, key=lambda info: info.name)

    def temporaries(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """The staged objects alone: one listing of the staging prefix."""
        return self._listed(self.staging, prefix)

    def _listed(self, base: str, prefix: str) -> Iterator[ObjectInfo]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=base + prefix
        )
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    yield ObjectInfo(
                        str(item["Key"])[len(base) :],
                        int(item["Size"]),
                        None,  # a listing reports the algorithm, never the value
                        item["LastModified"].timestamp(),
                    )
        except BotoCoreError as exc:
            raise StorageUnavailable(f"listing {self.describe()}: {exc}") from exc

    def delete(self, name: str, *, retries: int | None = None) -> None:
        self._retried(
            "delete",
            name,
            lambda: self.client.delete_object(Bucket=self.bucket, Key=self.key(name)),
            retries=retries,
        )

    def exists(self, name: str) -> bool:
        return self.stat(name) is not None

    def presigned_url(self, name: str, seconds: int, filename: str | None = None) -> str:
        """A GET URL valid ``seconds``, signed locally (no request): for download redirects."""
        params: dict[str, str] = {"Bucket": self.bucket, "Key": self.key(name)}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        url: str = self.client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=seconds
        )
        return url

    def ping(self) -> None:
        reason = self._check()
        if reason is not None:
            raise StorageUnavailable(f"the object store is unreachable: {reason}")

    def unreachable(self) -> str | None:
        return self._reachability.reason()

    def free_bytes(self) -> int:
        return self._local.free_bytes()

    def _check(self) -> str | None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            return f"{self.bucket}: {error_code(exc) or 'error'}"
        except BotoCoreError as exc:
            return type(exc).__name__
        return None

    def _retried(self, op: str, name: str, call: Callable[[], T], retries: int | None = None) -> T:
        """``call`` until it succeeds, ``retries`` (``self.retries``) more times with backoff
        while the store is away or overloaded (no answer, 5xx, throttled); refusals are raised
        at once, a missing source as ``FileNotFoundError``."""
        retries = self.retries if retries is None else retries
        failure: Exception = StorageUnavailable(op)  # replaced by the last try's error
        for attempt in range(retries + 1):
            try:
                return call()
            except ClientError as exc:
                code = error_code(exc)
                status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
                if code in NOT_FOUND:
                    raise FileNotFoundError(name) from exc
                if code in FULL or status == 507:
                    raise StorageFull(f"the object store is full: {code}") from exc
                refused = code in REFUSED or (400 <= status < 500 and status not in (408, 429))
                if refused and code not in TRANSIENT:
                    raise StorageError(f"the object store refused {op} {name}: {code}") from exc
                failure = exc
            except BotoCoreError as exc:
                failure = exc
            if attempt < retries:
                wait = min(MAX_BACKOFF, self.backoff * 2**attempt)
                event(
                    log,
                    "storage.retry",
                    level=logging.WARNING,
                    op=op,
                    attempt=attempt + 1,
                    wait_s=wait,
                    error=type(failure).__name__,
                )
                time.sleep(wait)
        raise StorageUnavailable(
            f"the object store did not take {op} {name} after {retries + 1} tries: "
            f"{type(failure).__name__}"
        ) from failure
