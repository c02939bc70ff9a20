"""Where backups go: a local folder (an NFS mount, say) or an ``s3://bucket/prefix`` URL.

Both take a stream of bytes with the SHA-256 it must hash to, and keep nothing that does not:
a local write goes to a temporary file that is fsynced and renamed into place only once its
hash matched; an S3 PUT carries ``x-amz-checksum-sha256``, so the store itself refuses a body
damaged on the way. A file (the database snapshot) goes up straight from its path, in parts
above :data:`MULTIPART_BYTES` (no 5 GiB single-PUT limit, no copy in /tmp), each part with its
SHA-256 that the store checks; the manifest keeps the whole file's SHA-256, which ``backup
verify`` recomputes from the bytes (a multipart object's own checksum is one of checksums).

S3 credentials come from the standard AWS chain (environment, config
files, instance role) and are never logged; the endpoint is ``backup.s3_endpoint_url``, else
``storage.s3_endpoint_url``, else AWS.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from steadyvoice.errors import BackupFailed, InvalidRequest
from steadyvoice.storage.local import TEMP_PREFIX, fsync_dir, make_dirs

if TYPE_CHECKING:
    from steadyvoice.settings import Settings

CHUNK = 1024 * 1024
# Bodies up to this size are buffered in memory before an S3 PUT; larger ones spill to disk.
SPOOL_BYTES = 8 * 1024 * 1024
# Above this an S3 upload goes in parts of this size (S3 allows 10,000: 640 GiB at most).
MULTIPART_BYTES = 64 * 1024 * 1024


class ChecksumMismatch(Exception):
    """The bytes given did not hash to the SHA-256 they were said to have."""


class Destination(Protocol):
    """A backup destination, addressed by keys (relative POSIX paths)."""

    def describe(self) -> str: ...

    def sizes(self, prefix: str) -> dict[str, int]:
        """Every key under ``prefix`` with its size (temporary files left out)."""
        ...

    def put(self, key: str, chunks: Iterable[bytes], sha256: str) -> int:
        """Store the bytes of ``chunks`` under ``key`` if they hash to ``sha256``, else raise
        :class:`ChecksumMismatch` and keep nothing; returns the size stored."""
        ...

    def put_file(self, key: str, path: Path, sha256: str) -> int:
        """:meth:`put` of the file at ``path`` (which hashes to ``sha256``)."""
        ...

    def chunks(self, key: str) -> Iterator[bytes]:
        """The bytes under ``key``; ``FileNotFoundError`` if there are none."""
        ...

    def flush(self) -> None:
        """Make every ``put`` so far durable (a manifest is written only after this)."""
        ...


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        yield from iter(lambda: fh.read(CHUNK), b"")


def _hashed(chunks: Iterable[bytes], out: BinaryIO) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    for block in chunks:
        digest.update(block)
        out.write(block)
        size += len(block)
    return digest.hexdigest(), size


class LocalDestination:
    """Keys are files under ``root``, written atomically and durably."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # Folders whose new entries are not yet durable: fsynced once each in flush(), not
        # after every file (half the fsyncs of a backup of many small files).
        self._unsynced: set[Path] = set()

    def describe(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        rel = PurePosixPath(key)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise ValueError(f"not a backup key: {key!r}")
        return self.root.joinpath(*rel.parts)

    def sizes(self, prefix: str) -> dict[str, int]:
        base = self._path(prefix)
        found: dict[str, int] = {}
        for folder, _dirs, files in os.walk(base):
            for name in files:
                if name.startswith(TEMP_PREFIX):
                    continue
                path = Path(folder) / name
                try:
                    found[path.relative_to(self.root).as_posix()] = path.stat().st_size
                except FileNotFoundError:
                    continue
        return found

    def put(self, key: str, chunks: Iterable[bytes], sha256: str) -> int:
        target = self._path(key)
        make_dirs(target.parent)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                got, size = _hashed(chunks, fh)
                if got != sha256:
                    raise ChecksumMismatch(f"{key}: got {got}, want {sha256}")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._unsynced.add(target.parent)
        return size

    def put_file(self, key: str, path: Path, sha256: str) -> int:
        return self.put(key, file_chunks(path), sha256)

    def flush(self) -> None:
        while self._unsynced:
            fsync_dir(self._unsynced.pop())

    def chunks(self, key: str) -> Iterator[bytes]:
        with self._path(key).open("rb") as fh:
            yield from iter(lambda: fh.read(CHUNK), b"")


class S3Destination:
    """Keys are objects under ``prefix`` in ``bucket``."""

    def __init__(
        self, client: Any, bucket: str, prefix: str, part_bytes: int = MULTIPART_BYTES
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.part_bytes = part_bytes

    @classmethod
    def from_url(cls, url: str, settings: Settings) -> S3Destination:
        import boto3  # only where an s3:// destination is used
        from botocore.config import Config

        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise InvalidRequest(f"no bucket in {url!r}; use s3://bucket/prefix", field="dest")
        endpoint = settings.backup.s3_endpoint_url or settings.storage.s3_endpoint_url
        region = settings.backup.s3_region or settings.storage.s3_region
        config = Config(retries={"max_attempts": 5, "mode": "standard"})
        dest = cls(None, bucket, prefix)
        with s3_errors(dest):  # no region anywhere, a malformed endpoint
            dest.client = boto3.client(
                "s3", endpoint_url=endpoint, region_name=region, config=config
            )
        return dest

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def sizes(self, prefix: str) -> dict[str, int]:
        found: dict[str, int] = {}
        skip = len(self._key(""))
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(prefix)
        )
        with s3_errors(self):
            for page in pages:
                for item in page.get("Contents", []):
                    found[item["Key"][skip:]] = int(item["Size"])
        return found

    def put(self, key: str, chunks: Iterable[bytes], sha256: str) -> int:
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as body:
            got, size = _hashed(chunks, body)  # type: ignore[arg-type]
            if got != sha256:
                raise ChecksumMismatch(f"{key}: got {got}, want {sha256}")
            body.seek(0)
            if size > self.part_bytes:
                self._upload(key, body)  # type: ignore[arg-type]
                return size
            checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
            with s3_errors(self):
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=self._key(key),
                    Body=body,
                    ChecksumSHA256=checksum,
                    ContentLength=size,
                )
        return size

    def put_file(self, key: str, path: Path, sha256: str) -> int:
        size = path.stat().st_size
        if size <= self.part_bytes:
            return self.put(key, file_chunks(path), sha256)
        with path.open("rb") as fh:
            self._upload(key, fh)
        return size

    def _upload(self, key: str, body: BinaryIO) -> None:
        """A multipart upload (boto3's transfer manager: parts in parallel, retried), each
        part sent with its SHA-256 for the store to check."""
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(
            multipart_threshold=self.part_bytes, multipart_chunksize=self.part_bytes
        )
        with s3_errors(self):
            self.client.upload_fileobj(
                body,
                self.bucket,
                self._key(key),
                ExtraArgs={"ChecksumAlgorithm": "SHA256"},
                Config=config,
            )

    def flush(self) -> None:
        """A PUT the store acknowledged is durable already."""

    def chunks(self, key: str) -> Iterator[bytes]:
        with s3_errors(self):
            try:
                answer = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            except self.client.exceptions.NoSuchKey:
                raise FileNotFoundError(key) from None
            yield from answer["Body"].iter_chunks(CHUNK)


@contextmanager
def s3_errors(dest: S3Destination) -> Iterator[None]:
    """Any S3 error inside, raised as ``backup_failed`` naming the destination (botocore's
    message names the operation and the store's error code, never credentials)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise BackupFailed(f"{dest.describe()}: {exc}") from None


def open_destination(dest: str, settings: Settings) -> Destination:
    """The destination ``dest`` names: ``s3://bucket/prefix`` or a local folder."""
    if dest.startswith("s3://"):
        return S3Destination.from_url(dest, settings)
    if "://" in dest:
        raise InvalidRequest(
            f"not a backup destination: {dest!r} (a folder or s3://bucket/prefix)", field="dest"
        )
    return LocalDestination(Path(dest))
