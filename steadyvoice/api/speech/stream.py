"""Streaming a job's audio to the client as the worker publishes it, sentence by sentence.

The worker adds each chunk (16-bit PCM) to the job store as soon as it is made; the API reads the
chunks after the last one it sent, encodes them with a :class:`StreamEncoder` and sends what is
ready. What the client gets:

* a complete response (the terminating chunk) only once the job has succeeded and every chunk was
  sent: its audio is then the stored, checksummed file's audio (``GET /v1/jobs/{id}``);
* a connection cut without the terminating chunk if the job fails or is canceled mid-stream, no
  chunk comes for ``speech.wait_seconds``, or the server shuts down before the end (at the end
  of its grace period, :mod:`steadyvoice.api.shutdown`): a client must not take a truncated
  stream for a whole one;
* if the client goes away mid-stream, the job is canceled, so its worker stops at its next chunk,
  unless it has an idempotency key: repeats of the call share it, so it goes on; its chunks are
  then left to the reaper (another call may be reading them), not deleted at the stream's end.

A job with an ``output_rate`` (``pcm``: 24 kHz) is resampled on the way, as its stored file was;
soxr gives the same samples however the audio is cut, so the stream is still the stored file.
``flac`` is only sent at the end (:mod:`steadyvoice.audio.streaming`): a call that does not ask
for a stream gets it whole.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from enum import Enum

import anyio
from fastapi.responses import StreamingResponse
from starlette.types import Send

from steadyvoice.api.shutdown import Shutdown
from steadyvoice.api.speech.wait import Poller, watching
from steadyvoice.audio.pcm import decode_pcm16
from steadyvoice.audio.streaming import StreamEncoder
from steadyvoice.errors import JobNotCancelable
from steadyvoice.jobs.chunks import Chunk, ChunkStore
from steadyvoice.jobs.dispatch import ProgressWatch, Watch
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.states import TERMINAL, JobStatus
from steadyvoice.jobs.store import JobStore
from steadyvoice.observability import metrics
from steadyvoice.observability.logs import event
from steadyvoice.settings import Settings

log = logging.getLogger("steadyvoice.api")

# Formats whose stream holds everything back until the end: not streamed unless asked for.
HELD_TO_THE_END = frozenset({"flac"})


class State(Enum):
    AUDIO = "audio"  # new chunks were read (the encoder may still hold their bytes back)
    IDLE = "idle"  # nothing new; the job is still on its way
    DONE = "done"  # the job succeeded and everything was sent (with the encoder's tail)
    ENDED = "ended"  # the job failed or was canceled: no more audio will come
    NO_CHUNKS = "no_chunks"  # the job succeeded without publishing any chunk


@dataclass
class Marks:
    """``perf_counter`` times of one streamed call, for its ``speech.first_audio`` event."""

    started: float
    submitted: float = 0.0
    read: float = 0.0  # the first chunk was read


@dataclass(frozen=True)
class Step:
    state: State
    data: bytes = b""
    job: Job | None = None


class ChunkFeed:
    """Reads one job's chunks in order and encodes them to ``fmt``. Blocking: call it from a
    worker thread (it reads the store and runs the encoder), one call at a time.

    It never lets a gap pass for a whole stream: chunks deleted under it (swept) or fewer
    samples than the job recorded end the stream as incomplete, or, before any audio, send the
    caller to the stored file.
    """

    def __init__(
        self,
        store: JobStore,
        chunks: ChunkStore,
        job_id: str,
        fmt: str,
        output_rate: int | None = None,
    ) -> None:
        self._store = store
        self._chunks = chunks
        self.job_id = job_id
        self.fmt = fmt
        self.output_rate = output_rate
        self.seq = -1
        self.samples = 0  # read from the chunks, at their sample_rate
        self.sample_rate: int | None = None  # the chunks' (the engine's)
        self._encoder: StreamEncoder | None = None

    @property
    def sent_rate(self) -> int | None:
        """The sample rate of the audio sent (None before the first chunk without output_rate)."""
        return self.output_rate or self.sample_rate

    def step(self) -> Step:
        """What is new since the last call."""
        fresh = self._fresh()
        if fresh:
            return self._audio(fresh)
        job = self._store.get(self.job_id)
        if fresh is None:
            return self._broken(job)
        if job.status == JobStatus.SUCCEEDED.value:
            # Every chunk exists once the job succeeded; one may have landed since the read above.
            fresh = self._fresh()
            if fresh:
                return self._audio(fresh)
            if fresh is None or self._encoder is None or not self._whole(job):
                return self._broken(job)
            return Step(State.DONE, self._encoder.finish(), job)
        if JobStatus(job.status) in TERMINAL:
            return Step(State.ENDED, job=job)
        return Step(State.IDLE, job=job)

    def _fresh(self) -> list[Chunk] | None:
        """The chunks after the last one read; None if some are missing."""
        fresh = self._chunks.after(self.job_id, self.seq)
        if [c.seq for c in fresh] != list(range(self.seq + 1, self.seq + 1 + len(fresh))):
            return None
        return fresh

    def _whole(self, job: Job) -> bool:
        """Whether every sample the job recorded went through the encoder."""
        rate = self.sample_rate
        if job.duration_seconds is None or rate is None or job.sample_rate != self.sent_rate:
            return False
        return round(job.duration_seconds * rate) == self.samples

    def _broken(self, job: Job) -> Step:
        if self._encoder is None and job.status == JobStatus.SUCCEEDED.value:
            return Step(State.NO_CHUNKS, job=job)
        return Step(State.ENDED, job=job)

    def _audio(self, fresh: list[Chunk]) -> Step:
        out = bytearray()
        for chunk in fresh:
            if self._encoder is None:
                self.sample_rate = chunk.sample_rate
                self._encoder = StreamEncoder(
                    self.fmt, chunk.sample_rate, output_rate=self.output_rate
                )
            elif chunk.sample_rate != self.sample_rate:
                raise RuntimeError(f"job {self.job_id} changed its sample rate mid-stream")
            samples = decode_pcm16(chunk.pcm)
            out += self._encoder.feed(samples)
            self.samples += len(samples)
            self.seq = chunk.seq
        return Step(State.AUDIO, bytes(out))

    def forget(self) -> None:
        """Delete the job's chunks: the stream is over, or nobody is left to read them."""
        self._chunks.delete(self.job_id)

    def cancel(self) -> Job | None:
        """Cancel the job; None if it had ended already."""
        try:
            return self._store.cancel(self.job_id)
        except JobNotCancelable:
            return None


async def first_step(feed: ChunkFeed, poller: Poller, pending: bool = False) -> Step:
    """Wait for the job's first chunk, or its end; IDLE (with the job) once ``poller`` expires.

    The poller's watch (taken before this is called) wakes it as soon as a worker rings.
    ``pending``: the job was just recorded (no chunk yet), so the first read waits for a ring
    or the first pause."""
    if pending:
        await poller.wait()
    while True:
        step = await anyio.to_thread.run_sync(feed.step)
        if step.state is not State.IDLE or poller.expired:
            return step
        await poller.wait()


class SpeechStream(StreamingResponse):
    """A chunked response that follows a streaming job to its end (see the module docstring).

    Created once the first chunk is there (``first`` holds its encoded bytes), so the response
    starts with audio, and only a job that fails before any audio gets a JSON error instead.
    ``shared``: other calls may follow the job too (it has an idempotency key).
    """

    def __init__(
        self,
        feed: ChunkFeed,
        first: Step,
        settings: Settings,
        marks: Marks,
        media_type: str,
        progress: ProgressWatch | None = None,
        shutdown: Shutdown | None = None,
        *,
        shared: bool = False,
    ) -> None:
        super().__init__(
            iter(()),
            media_type=media_type,
            headers={"X-Job-ID": feed.job_id, "X-Sample-Rate": str(feed.sent_rate or "")},
        )
        self._feed = feed
        self._first = first
        self._settings = settings
        self._marks = marks
        self._progress = progress
        self._shutdown = shutdown
        self._shared = shared
        self._audio_sent = False

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        try:
            with watching(self._progress, self._feed.job_id) as watch:
                complete = await self._pump(send, watch)
            if complete:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (anyio.get_cancelled_exc_class(), OSError):  # the client went away
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._abandon)
            raise
        except Exception:  # our failure (the store unreachable...): cut, leave the job be
            log.exception("speech stream failed", extra={"job_id": self._feed.job_id})
        # An incomplete stream ends here without its terminating chunk: the server closes the
        # connection, and the client sees a truncated body, never a complete-looking one.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._forget)

    async def _pump(self, send: Send, watch: Watch | None) -> bool:
        """Send audio until the job is done (True) or ended without all of it (False)."""
        step = self._first
        speech = self._settings.speech
        poller = Poller(speech.poll_seconds, speech.wait_seconds, watch, self._shutdown)
        while True:
            if step.data:
                await self._send(send, step.data)
            if step.state is State.DONE:
                return True
            if step.state not in (State.AUDIO, State.IDLE):  # ENDED (NO_CHUNKS can't follow)
                status = step.job.status if step.job else None
                self._cut("chunks_missing" if status == JobStatus.SUCCEEDED.value else str(status))
                return False
            if poller.shutting_down:
                self._cut("shutting_down")
                return False
            if step.state is State.AUDIO:
                poller.progress()
            elif poller.expired:
                self._cut("stalled")
                return False
            else:
                await poller.wait()
            step = await anyio.to_thread.run_sync(self._feed.step)

    async def _send(self, send: Send, data: bytes) -> None:
        await send({"type": "http.response.body", "body": data, "more_body": True})
        if not self._audio_sent:
            self._audio_sent = True
            marks, sent = self._marks, time.perf_counter()
            metrics.observe_first_audio(sent - marks.started, streamed=True)
            event(
                log,
                "speech.first_audio",
                job_id=self._feed.job_id,
                submitted_ms=round((marks.submitted - marks.started) * 1000, 2),
                read_ms=round((marks.read - marks.started) * 1000, 2),
                sent_ms=round((sent - marks.started) * 1000, 2),
            )

    def _cut(self, why: str) -> None:
        event(log, "speech.stream_cut", job_id=self._feed.job_id, reason=why, seq=self._feed.seq)

    def _abandon(self) -> None:
        """The client is gone: cancel the job (its worker stops at its next chunk), unless
        it is shared: then it goes on for whoever repeats the call."""
        feed = self._feed
        event(log, "speech.client_gone", job_id=feed.job_id, seq=feed.seq, kept=self._shared)
        if self._shared:
            return
        job = feed.cancel()
        if job is not None:
            metrics.observe_finished(job, self._settings.slo)
        self._forget()

    def _forget(self) -> None:
        if self._shared:  # another call may still be reading them: the reaper deletes them
            return
        try:
            self._feed.forget()
        except Exception:  # the sweeper deletes them later
            log.exception("could not delete streamed chunks", extra={"job_id": self._feed.job_id})
