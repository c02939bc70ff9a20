"""Where outputs and voice references live: one small interface, two backends.

``local`` (:class:`~steadyvoice.storage.local.LocalStorage`, the default) keeps files under the
data dir; ``s3`` (:class:`~steadyvoice.storage.s3.S3Storage`) keeps objects in any
S3-compatible store. Both are addressed by the same names: a name is the path relative to the
area's folder (``2026/12/07/output_….wav`` in ``outputs``, ``<voice id>/reference.wav`` in
``voices``), and an S3 key is ``<storage.s3_prefix>/<area>/<name>``, the path relative to the
data dir, so a bucket browses like the data dir does (docs/storage.md).

Every write is durable when it returns (fsync + rename + folder fsync; a PUT the store
acknowledged, sent with its SHA-256 so the store refuses a corrupted body).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from steadyvoice.settings import Settings

Area = Literal["outputs", "voices"]
AREAS: tuple[Area, ...] = ("outputs", "voices")
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ObjectInfo:
    """One stored file or object. ``sha256`` (hex) is what the store reports without reading
    the data (S3's ``x-amz-checksum-sha256``); None where it reports none (the local disk, an
    object uploaded without a checksum): :func:`content_sha256` then reads it."""

    name: str
    size: int
    sha256: str | None
    modified: float  # seconds since the epoch


@runtime_checkable
class Storage(Protocol):
    """Outputs or voice references, addressed by name (a relative POSIX path).

    Implementations: :class:`~steadyvoice.storage.local.LocalStorage` (``local``) and
    :class:`~steadyvoice.storage.s3.S3Storage` (``s3``).
    """

    kind: str  # "local" or "s3": the name in storage.backend

    def put(self, name: str, data: bytes, sha256: str | None = None) -> tuple[str, int]:
        """Store ``data`` under ``name``, durable on return; returns ``(sha256, size)``.
        With ``sha256`` given the store refuses data that does not hash to it
        (:class:`~steadyvoice.errors.StorageError`). A full disk or quota raises
        ``storage_full``; an unreachable store ``storage_unavailable``."""
        ...

    def chunks(self, name: str, size: int = CHUNK) -> Iterator[bytes]:
        """The stored bytes, streamed ``size`` at a time (never read whole).
        ``FileNotFoundError`` if there is no such file or object."""
        ...

    def stat(self, name: str) -> ObjectInfo | None:
        """Size (and the store's SHA-256 if it keeps one) of ``name``; None if absent."""
        ...

    def objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every file or object whose name starts with ``prefix``, by name, temp (``.tmp-``)
        ones included. ``sha256`` is None unless the listing itself reports it."""
        ...

    def temporaries(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Only the temp files (staged objects on S3) whose name starts with ``prefix``: what
        the start-up sweep looks at, without listing every output."""
        ...

    def delete(self, name: str, *, retries: int | None = None) -> None:
        """Remove ``name``; nothing happens if it is absent. ``retries``: how often an object
        store that does not answer is tried again (its upload budget if None)."""
        ...

    def exists(self, name: str) -> bool: ...

    def replace(self, name: str, new_name: str) -> None:
        """Put ``name``'s content under ``new_name`` (replacing it), durable on return:
        a rename on disk, a server-side copy on S3 (``name`` stays until deleted)."""
        ...

    def ping(self) -> None:
        """Raise :class:`~steadyvoice.errors.StorageUnavailable` if the store cannot be reached."""
        ...

    def unreachable(self) -> str | None:
        """Why the store cannot be reached, from a check cached a few seconds (readiness's
        ``storage_unreachable``; never a request per call); None while it answers."""
        ...

    def free_bytes(self) -> int:
        """Free space on the local disk the service writes to: the area's folder, or with S3
        the data dir's (its database and caches)."""
        ...

    def describe(self) -> str:
        """Where it is, for logs and reports (``/data/outputs``, ``s3://bucket/prefix/outputs``);
        never credentials."""
        ...


def content_sha256(storage: Storage, name: str) -> str | None:
    """The SHA-256 of ``name``: the store's own where it reports one (no download), else read
    and hashed. None if ``name`` is absent."""
    info = storage.stat(name)
    if info is None:
        return None
    if info.sha256 is not None:
        return info.sha256
    digest = hashlib.sha256()
    try:
        for block in storage.chunks(name):
            digest.update(block)
    except FileNotFoundError:
        return None
    return digest.hexdigest()


def open_storage(settings: Settings, area: Area) -> Storage:
    """The configured backend (``storage.backend``) for ``area``: ``outputs`` or ``voices``."""
    if area not in AREAS:
        raise ValueError(f"not a storage area: {area!r}")
    if settings.storage.backend == "s3":
        from steadyvoice.storage.s3 import S3Storage  # boto3 loads only where S3 is used

        return S3Storage.from_settings(settings.storage, area, settings.data_dir)
    from steadyvoice.storage.local import LocalStorage

    return LocalStorage(settings.data_dir / area)
