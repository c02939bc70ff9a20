"""Answering with a stored output, whatever the backend (:mod:`steadyvoice.storage.backend`).

On disk: the file itself (:class:`DownloadFile`). On S3: the object streamed through, a megabyte at
a time, never held whole; or, with ``storage.presign=true``, a 307 to a presigned URL valid
``storage.presign_seconds`` (the route's audit row is written either way: it is the route's,
not the body's). A conversion needs a file: the object is downloaded into a temporary file
that goes once the conversion is made, and only once the conversion cache missed and a
conversion slot was taken (:meth:`~steadyvoice.api.conversions.Conversions.get`'s ``fetch``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path, PurePosixPath

import anyio.to_thread
from fastapi import Response
from fastapi.responses import FileResponse, RedirectResponse, StreamingResponse

from steadyvoice.api.cached_reads import CacheFirstFile
from steadyvoice.api.deps import Services
from steadyvoice.errors import OutputMissing
from steadyvoice.jobs.models import Job
from steadyvoice.storage.local import TEMP_PREFIX, LocalStorage
from steadyvoice.storage.retention import not_purged

MISSING = "the output file is missing; run `steadyvoice verify`"


class DownloadFile(FileResponse):
    """A stored or converted audio file, each block read from the page cache on the event loop
    where it is there, else in a worker thread (:mod:`steadyvoice.api.cached_reads`): read in
    worker threads, a burst of downloads of megabytes made thousands of thread hops, crowding
    the event loop that answers every other call (docs/benchmarks.md, the conversion storm).
    Blocks of 128 KiB: 1 MiB blocks held the loop longer per copy and measured worse. Ranges
    are served as ``FileResponse`` serves them."""

    chunk_size = 128 * 1024

    @contextlib.asynccontextmanager
    async def _open_file(self) -> AsyncIterator[CacheFirstFile]:  # type: ignore[override]
        file = await CacheFirstFile.open(self.path)
        try:
            yield file
        finally:
            with anyio.CancelScope(shield=True):  # closing must finish even when cancelled
                await file.aclose()


def output_filename(job: Job) -> str:
    return PurePosixPath(job.output_name).name


def stored_output(services: Services, job: Job) -> Path:
    """A succeeded job's output file on the local disk; ``output_missing`` (410) if it is gone,
    ``output_purged`` (410) if the retention policy deleted it."""
    not_purged(job)
    storage = services.storage
    if not isinstance(storage, LocalStorage):
        raise TypeError("stored_output is for the local backend; use output_response")
    path = storage.path(job.output_name)
    if not path.is_file():
        raise OutputMissing(MISSING, job_id=job.id)
    return path


async def output_response(
    services: Services,
    job: Job,
    media_type: str,
    headers: dict[str, str],
    filename: str | None = None,
    presign: bool = True,
) -> Response:
    """The stored output as the answer: the file, the object streamed, or (``presign`` and
    ``storage.presign``) a presigned redirect. ``filename`` makes it an attachment."""
    storage = services.storage
    if isinstance(storage, LocalStorage):
        path = stored_output(services, job)
        return DownloadFile(path, media_type=media_type, filename=filename, headers=headers)
    not_purged(job)
    settings = services.settings.storage
    if presign and settings.presign:
        from steadyvoice.storage.s3 import S3Storage  # boto3 loads only where S3 is used

        assert isinstance(storage, S3Storage)  # settings: presign needs backend s3
        url = storage.presigned_url(job.output_name, settings.presign_seconds, filename)
        return RedirectResponse(url, status_code=307, headers=headers)
    chunks = storage.chunks(job.output_name)
    try:  # the first read in a thread: a missing object is a 410 before any byte is sent
        first = await anyio.to_thread.run_sync(next, chunks, b"")
    except FileNotFoundError:
        raise OutputMissing(MISSING, job_id=job.id) from None
    extra = dict(headers)
    if filename:
        extra["Content-Disposition"] = f'attachment; filename="{filename}"'
    if job.size_bytes is not None:
        extra["Content-Length"] = str(job.size_bytes)
    return StreamingResponse(_chain(first, chunks), media_type=media_type, headers=extra)


def output_chunks(services: Services, job: Job) -> Iterator[bytes]:
    """The stored output's bytes, a megabyte at a time, for code that copies it along (a
    batch's ZIP). Raises ``output_missing`` / ``output_purged`` at once, before any byte."""
    not_purged(job)
    chunks = services.storage.chunks(job.output_name)
    try:
        first = next(chunks, b"")
    except FileNotFoundError:
        raise OutputMissing(MISSING, job_id=job.id) from None
    return _chain(first, chunks)


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest  # a sync iterator: Starlette reads it in a worker thread


@contextlib.asynccontextmanager
async def local_output(services: Services, job: Job) -> AsyncIterator[Path]:
    """A local file with the job's output for the span of a conversion: the file itself on
    disk, else a private temporary download (the conversion checks its SHA-256)."""
    storage = services.storage
    if isinstance(storage, LocalStorage):
        yield stored_output(services, job)
        return
    not_purged(job)
    folder = services.settings.data_dir / "cache" / "downloads"
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)  # 0600

    def download() -> None:
        with os.fdopen(fd, "wb") as fh:
            try:
                for block in storage.chunks(job.output_name):
                    fh.write(block)
            except FileNotFoundError:
                raise OutputMissing(MISSING, job_id=job.id) from None

    try:
        await anyio.to_thread.run_sync(download)
        yield Path(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)
