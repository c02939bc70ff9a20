"""A streaming job in the worker: chunks published as made, the stored file is all of them,
and a canceled job stops generating at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from factories import new_job  # type: ignore[import-not-found]

from steadyvoice.audio.formats import FORMATS, decode, encoder_tag
from steadyvoice.audio.pcm import decode_pcm16
from steadyvoice.engines.base import Audio, SynthesisRequest
from steadyvoice.engines.fake import FakeEngine
from steadyvoice.jobs.chunks import ChunkStore
from steadyvoice.jobs.runner import run_claimed
from steadyvoice.jobs.store import JobStore
from steadyvoice.jobs.watch import ClaimWatch
from steadyvoice.settings import FakeSettings
from steadyvoice.storage.local import LocalStorage

TEXT = "First sentence here. Second one follows. Third is longer than the rest. Fourth ends it."


def _streaming_job(store: JobStore, fmt: str = "wav", text: str = TEXT) -> str:
    params = {"seed": 42, "speed": 1.0, "format": fmt, "stream": True}
    job, _ = store.create(new_job(text, params=params))
    return job.id


def _claim(store: JobStore, job_id: str):  # type: ignore[no-untyped-def]
    claim = store.claim("host:1", 30)
    assert claim is not None and claim.job.id == job_id
    return claim


def _pcm(chunks: ChunkStore, job_id: str) -> np.ndarray:
    got = chunks.after(job_id, -1, limit=1000)
    assert [c.seq for c in got] == list(range(len(got)))
    return np.concatenate([decode_pcm16(c.pcm) for c in got])


@pytest.mark.parametrize("fmt", FORMATS)
def test_chunks_are_the_stored_audio(store: JobStore, tmp_path: Path, fmt: str) -> None:
    storage = LocalStorage(tmp_path / "out")
    engine = FakeEngine(FakeSettings())
    job_id = _streaming_job(store, fmt)
    assert run_claimed(_claim(store, job_id), engine, store, storage) == "succeeded"
    chunks = ChunkStore(store)
    published = chunks.after(job_id, -1)
    assert len(published) == 4, "one chunk per sentence"
    job = store.get(job_id)
    stored = storage.path(job.output_name).read_bytes()
    assert job.output_name.endswith(f".{fmt}")
    # The version names the encoder of lossy and flac files: a codec upgrade shows.
    assert job.engine_version == "fake-2+split-clause1+sr16000" + encoder_tag(fmt)
    assert (encoder_tag(fmt) == "") == (fmt in ("wav", "pcm"))
    if fmt in ("wav", "flac", "pcm"):  # lossless: the very samples that were streamed
        samples, rate = decode(stored, fmt, sample_rate=16_000)
        assert rate == 16_000
        assert np.array_equal(np.round(samples * 32768), np.round(_pcm(chunks, job_id) * 32768))
    else:
        plain = FakeEngine(FakeSettings()).synthesize(
            SynthesisRequest(text=TEXT, voice="alpha", seed=42)
        )
        assert len(_pcm(chunks, job_id)) == len(plain.samples)


def test_streaming_is_deterministic_and_equals_plain_synthesis(
    store: JobStore, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "out")
    engine = FakeEngine(FakeSettings())
    first = _streaming_job(store, "pcm")
    run_claimed(_claim(store, first), engine, store, storage)
    second = _streaming_job(store, "pcm", TEXT)
    run_claimed(_claim(store, second), engine, store, storage)
    a = storage.path(store.get(first).output_name).read_bytes()
    b = storage.path(store.get(second).output_name).read_bytes()
    assert a == b
    plain = engine.synthesize(SynthesisRequest(text=TEXT, voice="alpha", seed=42))
    assert np.array_equal(decode_pcm16(a), decode_pcm16(_pcm16(plain)))


def _pcm16(audio: Audio) -> bytes:
    from steadyvoice.audio.pcm import pcm16

    return pcm16(audio.samples, audio.sample_rate)


class _CancelAfterFirst:
    """Wraps the fake engine: cancels the job once the first chunk is out, counts sentences."""

    name = "fake"

    def __init__(self, store: JobStore, job_id: str) -> None:
        self._inner = FakeEngine(FakeSettings())
        self._store = store
        self._job_id = job_id
        self.made = 0
        self.closed = False

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def stream(self, request: SynthesisRequest) -> Iterator[Audio]:
        try:
            for piece in self._inner.stream(request):
                self.made += 1
                yield piece
                if self.made == 1:
                    self._store.cancel(self._job_id)
        finally:
            self.closed = True


def test_a_canceled_stream_stops_generating(store: JobStore, tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "out")
    job_id = _streaming_job(store)
    engine = _CancelAfterFirst(store, job_id)
    claim = _claim(store, job_id)
    # Only the next chunk's fenced write finds the cancel here: the checks between sentences
    # (tests/jobs/test_watch.py) would not ask the store for a minute.
    watch = ClaimWatch(store, claim, poll_seconds=60)
    status = run_claimed(claim, engine, store, storage, watch=watch)  # type: ignore[arg-type]
    assert status == "canceled"
    assert engine.made == 2, "the sentence in progress when the cancel landed is the last"
    assert engine.closed, "the engine's stream was closed, releasing the model"
    assert [c.seq for c in ChunkStore(store).after(job_id, -1)] == [0]
    assert not storage.path(store.get(job_id).output_name).exists()


def test_chunk_sweep_keeps_running_jobs_chunks(store: JobStore, tmp_path: Path) -> None:
    from datetime import timedelta

    storage = LocalStorage(tmp_path / "out")
    done = _streaming_job(store)
    run_claimed(_claim(store, done), FakeEngine(FakeSettings()), store, storage)
    chunks = ChunkStore(store)
    assert chunks.sweep(timedelta(hours=1)) == 0
    assert chunks.sweep(timedelta(seconds=0)) == 4
    assert chunks.after(done, -1) == []


LONG_FIRST = (
    "The quarterly report from the northern regional office shows that customer numbers grew. "
    "Second sentence here."
)


class _Recorder:
    """A ``Dispatcher`` that remembers every job id it is told about."""

    def __init__(self) -> None:
        self.told: list[str] = []

    def notify(self, job_id: str) -> None:
        self.told.append(job_id)


def test_a_long_first_sentence_streams_its_leading_clause_first(
    store: JobStore, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "out")
    engine = FakeEngine(FakeSettings())
    job_id = _streaming_job(store, "pcm", LONG_FIRST)
    news = _Recorder()
    run_claimed(_claim(store, job_id), engine, store, storage, news=news)
    chunks = ChunkStore(store).after(job_id, -1)
    assert len(chunks) == 3, "leading clause, the rest of the first sentence, the second"
    assert len(chunks[0].pcm) < len(chunks[1].pcm) / 2
    assert news.told == [job_id] * 4, "a ring per chunk, and one for the outcome"
    stored = storage.path(store.get(job_id).output_name).read_bytes()
    assert stored == b"".join(c.pcm for c in chunks)
    plain = engine.synthesize(SynthesisRequest(text=LONG_FIRST, voice="alpha", seed=42))
    assert stored == _pcm16(plain), "streamed or not, the same cut and the same bytes"


def test_a_plain_job_rings_once_its_outcome_is_recorded(store: JobStore, tmp_path: Path) -> None:
    job, _ = store.create(new_job(TEXT))
    news = _Recorder()
    status = run_claimed(
        _claim(store, job.id), FakeEngine(FakeSettings()), store, LocalStorage(tmp_path), news=news
    )
    assert status == "succeeded" and news.told == [job.id]
