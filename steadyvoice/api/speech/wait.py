"""Waiting on the job behind a synchronous speech call, and what its end means for the caller.

The API never runs an engine: ``POST /v1/audio/speech`` queues a job like ``POST /v1/jobs`` and
then reads the job store until the job is done (or a chunk of a streaming job is there). Reads
are cheap indexed lookups, run off the event loop; the pause between them starts at
``speech.poll_seconds`` and grows while nothing changes, so a long job costs a few reads a second.
A worker on this host rings the API when the job publishes a chunk or ends
(:class:`~steadyvoice.jobs.dispatch.ProgressWatch`), which cuts the pause short: the caller reads
at once instead of at its next poll.

A call gives up after ``speech.wait_seconds`` (``504 speech_timeout``), or sooner once the
server shuts down (:mod:`steadyvoice.api.shutdown`): ``503 shutting_down`` within the grace
period, instead of being cut by it. Either way the job goes on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import anyio

from steadyvoice.api.shutdown import Shutdown
from steadyvoice.errors import (
    AudioNotReady,
    InvalidRequest,
    ShuttingDown,
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
# When a client refused by a shutdown may try again (a restart takes seconds).
SHUTDOWN_RETRY_SECONDS = 5


class Poller:
    """Pauses between store reads: ``first`` seconds, then longer up to ``MAX_PAUSE_SECONDS``
    while nothing changes; ``progress()`` starts over. ``expired`` after ``limit`` seconds
    without progress, or once a ``shutdown`` leaves no more time (``shutting_down``). With a
    ``watch``, a worker's ring ends a pause early."""

    def __init__(
        self,
        first: float,
        limit: float,
        watch: Watch | None = None,
        shutdown: Shutdown | None = None,
    ) -> None:
        self._watch = watch
        self._shutdown = shutdown
        self._first = first
        self._cap = max(first, MAX_PAUSE_SECONDS)
        self._pause = first
        self._limit = limit
        self._since = time.monotonic()

    @property
    def expired(self) -> bool:
        return self.shutting_down or time.monotonic() - self._since >= self._limit

    @property
    def shutting_down(self) -> bool:
        """The server is shutting down and the call must answer now."""
        return self._shutdown is not None and self._shutdown.seconds_left() <= 0

    def progress(self) -> None:
        self._pause = self._first
        self._since = time.monotonic()

    async def wait(self) -> None:
        left = self._limit - (time.monotonic() - self._since)
        if self._shutdown is not None:
            left = min(left, self._shutdown.seconds_left())
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
    shutdown: Shutdown | None = None,
    *,
    pending: bool = False,
) -> Job:
    """The job once it is in a final state; ``speech_timeout`` (504) after ``limit`` seconds,
    ``shutting_down`` (503) when a shutdown leaves no more time.

    ``pending``: the caller has just recorded the job, so it is known to be queued and the
    first read waits for a ring (or the first pause) instead of reading it at once."""
    with watching(progress, job_id) as watch:
        poller = Poller(first, limit, watch, shutdown)
        if pending:
            await poller.wait()
        while True:
            job = await anyio.to_thread.run_sync(store.get, job_id)
            if JobStatus(job.status) in TERMINAL:
                return job
            if poller.expired:
                raise gave_up(job, limit, poller)
            await poller.wait()


def gave_up(job: Job, limit: float, poller: Poller) -> SteadyVoiceError:
    """Why an expired ``poller`` stopped waiting for ``job``."""
    if poller.shutting_down:
        return ShuttingDown(
            f"the server is shutting down before the job was done; the job goes on: poll "
            f"/v1/jobs/{job.id} (or repeat the call with its Idempotency-Key) once the "
            "service is back",
            job_id=job.id,
            status=job.status,
            retry_after=SHUTDOWN_RETRY_SECONDS,
        )
    return timed_out(job, limit)


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


def audio_headers(job: Job) -> dict[str, str]:
    """A succeeded job's stored file's headers as the speech call's answer: its checksum and
    ``X-Sample-Rate`` (the file's, which is the job's output rate)."""
    return {
        "X-Job-ID": job.id,
        "X-Content-SHA256": job.sha256 or "",
        "X-Sample-Rate": str(job.sample_rate or ""),
    }
