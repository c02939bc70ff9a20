"""Waiting on the job behind a synchronous speech call, and what its end means for the caller.

The API never runs an engine: ``POST /v1/audio/speech`` queues a job like ``POST /v1/jobs`` and
then reads the job store until the job is done (or a chunk of a streaming job is there). Reads
are cheap indexed lookups, run off the event loop; the pause between them starts at
``speech.poll_seconds`` and grows while nothing changes, so a long job costs a few reads a second.
A worker on this host rings the API when the job publishes a chunk or ends
(:class:`~steadyvoice.jobs.dispatch.ProgressWatch`), which cuts the pause short: the caller reads
at once instead of at its next poll.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import anyio
from fastapi.responses import FileResponse

from steadyvoice.audio.formats import CONTENT_TYPES
from steadyvoice.errors import (
    AudioNotReady,
    InvalidRequest,
    SpeechFailed,
    SpeechTimeout,
    SteadyVoiceError,
)
from steadyvoice.jobs.dispatch import ProgressWatch, Watch
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.states import TERMINAL, JobStatus
from steadyvoice.jobs.store import JobStore
from steadyvoice.observability.outcomes import CLIENT_ERROR_CODES

# The longest pause between two reads, however long the job takes (unless poll_seconds is more).
MAX_PAUSE_SECONDS = 0.25
GROWTH = 1.5


class Poller:
    """Pauses between store reads: ``first`` seconds, then longer up to ``MAX_PAUSE_SECONDS``
    while nothing changes; ``progress()`` starts over. ``expired`` after ``limit`` seconds
    without progress. With a ``watch``, a worker's ring ends a pause early."""

    def __init__(self, first: float, limit: float, watch: Watch | None = None) -> None:
        self._watch = watch
        self._first = first
        self._cap = max(first, MAX_PAUSE_SECONDS)
        self._pause = first
        self._limit = limit
        self._since = time.monotonic()

    @property
    def expired(self) -> bool:
        return time.monotonic() - self._since >= self._limit

    def progress(self) -> None:
        self._pause = self._first
        self._since = time.monotonic()

    async def wait(self) -> None:
        left = self._limit - (time.monotonic() - self._since)
        pause = max(0.0, min(self._pause, left))
        if self._watch is None:
            await anyio.sleep(pause)
        else:
            await self._watch.wait(pause)
        self._pause = min(self._pause * GROWTH, self._cap)


@contextmanager
def watching(progress: ProgressWatch | None, job_id: str) -> Iterator[Watch | None]:
    """``progress.watch(job_id)``, or no watch (plain polling) without ``progress``."""
    with nullcontext(None) if progress is None else progress.watch(job_id) as watch:
        yield watch


async def wait_finished(
    store: JobStore,
    job_id: str,
    first: float,
    limit: float,
    progress: ProgressWatch | None = None,
) -> Job:
    """The job once it is in a final state; ``speech_timeout`` (504) after ``limit`` seconds."""
    with watching(progress, job_id) as watch:
        poller = Poller(first, limit, watch)
        while True:
            job = await anyio.to_thread.run_sync(store.get, job_id)
            if JobStatus(job.status) in TERMINAL:
                return job
            if poller.expired:
                raise timed_out(job, limit)
            await poller.wait()


def timed_out(job: Job, limit: float) -> SpeechTimeout:
    return SpeechTimeout(
        f"the job did not finish within {limit:g} s; it goes on: poll /v1/jobs/{job.id} and "
        f"download /v1/jobs/{job.id}/audio when it has succeeded",
        job_id=job.id,
        status=job.status,
        wait_seconds=limit,
    )


def ended_without_audio(job: Job) -> SteadyVoiceError:
    """The error for a job that failed or was canceled.

    A failure caused by the request itself (a voice deleted meanwhile, text with nothing to
    say) is answered 422 with the job's own code, as ``POST /v1/jobs`` would have; any other
    failure is ``speech_failed`` (502) naming the job's error. A job canceled meanwhile (by
    ``POST /v1/jobs/{id}/cancel``) is ``audio_not_ready`` (409), as its download would be.
    """
    if job.status == JobStatus.CANCELED.value:
        return AudioNotReady(
            "the job was canceled before it made audio", job_id=job.id, status=job.status
        )
    code = job.error_code or "engine_error"
    message = job.error_message or code
    if code in CLIENT_ERROR_CODES:
        return _client_error(code)(message, job_id=job.id)
    return SpeechFailed(
        f"the speech job failed ({code}): {message}",
        job_id=job.id,
        job_error={"code": code, "message": job.error_message},
    )


def _client_error(code: str) -> type[InvalidRequest]:
    """The error class whose code is ``code`` (``InvalidRequest`` itself if none is)."""
    pending: list[type[InvalidRequest]] = [InvalidRequest]
    while pending:
        cls = pending.pop()
        if cls.code == code:
            return cls
        pending.extend(cls.__subclasses__())
    return InvalidRequest


def audio_file(job: Job, path: Path) -> FileResponse:
    """A succeeded job's stored file (``path``, known to exist), with its checksum, as the
    speech call's answer."""
    fmt = str(job.params.get("format", "wav"))
    return FileResponse(
        path,
        media_type=CONTENT_TYPES[fmt],
        headers={
            "X-Job-ID": job.id,
            "X-Content-SHA256": job.sha256 or "",
            "X-Sample-Rate": str(job.sample_rate or ""),
        },
    )
