"""The conversion pool: bounded, refuses the excess at once, makes each result once, caches it.

The admission tests hold conversions at a gate, which needs them in this process: they run the
pool on threads. The others use the real pool of niced processes.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import numpy as np
import pytest

import steadyvoice.api.conversions as conversions_module
from steadyvoice.api.conversions import (
    NICE,
    Conversions,
    Source,
    make,
    open_unlinked,
    process_pool,
)
from steadyvoice.audio.conversion import convert
from steadyvoice.audio.formats import decode, encode
from steadyvoice.errors import Busy, OutputMissing
from steadyvoice.settings import ConversionSettings

RATE = 16_000


def stored(tmp_path: Path, name: str, seconds: float = 2.0, pitch: float = 220.0) -> Source:
    t = np.arange(int(seconds * RATE)) / RATE
    data = encode(np.asarray(0.3 * np.sin(2 * np.pi * pitch * t), dtype=np.float32), RATE, "wav")
    path = tmp_path / f"{name}.wav"
    path.write_bytes(data)
    return Source(name, path, "wav", RATE, hashlib.sha256(data).hexdigest())


class Gate:
    """Holds every conversion until opened, and counts them: real conversions, on cue."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.started = 0
        self.lock = threading.Lock()

    def convert(self, *args: Any) -> int:
        with self.lock:
            self.started += 1
        assert self.opened.wait(30), "the test never opened the gate"
        return convert(*args)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    held = Gate()
    monkeypatch.setattr(conversions_module, "convert", held.convert)
    yield held
    held.opened.set()


@pytest.fixture
def pools(tmp_path: Path) -> Iterator[Any]:
    """Make :class:`Conversions` (``threads=True``: on a thread pool); all closed at the end."""
    made: list[Conversions] = []

    def make(threads: bool = False, **settings: Any) -> Conversions:
        executor = ThreadPoolExecutor if threads else process_pool
        made.append(Conversions(ConversionSettings(**settings), tmp_path / "cache", executor))
        return made[-1]

    yield make
    for conversions in made:
        conversions.close()


async def until(check: Any) -> None:
    with anyio.fail_after(30):
        while not check():
            await anyio.sleep(0.01)


def test_a_conversion_is_made_once_then_served_from_the_cache(tmp_path: Path, pools: Any) -> None:
    conversions = pools(workers=1)
    source = stored(tmp_path, "job")

    async def main() -> tuple[Any, Any]:
        return await conversions.get(source, "mp3"), await conversions.get(source, "mp3")

    first, again = anyio.run(main)
    assert not first.cache_hit and again.cache_hit and first.path == again.path
    samples, _ = decode(source.path.read_bytes(), "wav")
    assert first.path.read_bytes() == encode(samples, RATE, "mp3")


def test_one_more_than_workers_and_queue_is_busy(tmp_path: Path, gate: Gate, pools: Any) -> None:
    conversions = pools(threads=True, workers=2, queue=1)
    sources = [stored(tmp_path, f"job{i}", pitch=200.0 + i) for i in range(4)]
    refusals: list[Busy] = []

    async def main() -> list[bool]:
        results: list[bool] = []

        async def one(source: Source) -> None:
            try:
                results.append((await conversions.get(source, "flac")).cache_hit)
            except Busy as exc:
                refusals.append(exc)

        async with anyio.create_task_group() as tg:
            for source in sources[:3]:
                tg.start_soon(one, source)
            await until(lambda: gate.started == 2 and conversions.admitted == 3)
            await one(sources[3])  # the fourth: refused at once, while three are admitted
            assert conversions.running == 2, "the pool runs two, the third waits"
            default = anyio.to_thread.current_default_thread_limiter()
            assert default.borrowed_tokens == 0, "key checks and cheap reads find every thread"
            gate.opened.set()
        return results

    assert anyio.run(main) == [False, False, False]
    [busy] = refusals
    assert busy.code == "busy" and busy.status == 503
    assert busy.details["retry_after"] >= 1 and busy.details["limit"] == 3
    assert conversions.admitted == 0 and conversions.running == 0


def test_identical_conversions_at_once_are_made_once_and_take_no_place(
    tmp_path: Path, gate: Gate, pools: Any
) -> None:
    conversions = pools(threads=True, workers=1, queue=0)
    source = stored(tmp_path, "job")

    async def main() -> list[Any]:
        got: list[Any] = []

        async def one() -> None:
            got.append(await conversions.get(source, "opus"))

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(one)
            await until(lambda: gate.started == 1)
            await anyio.sleep(0.1)  # give the others every chance to start a second one
            assert conversions.admitted == 1, "the four others wait without a place"
            gate.opened.set()
        return got

    got = anyio.run(main)
    assert gate.started == 1
    assert sorted(c.cache_hit for c in got) == [False, True, True, True, True]
    assert len({c.path.read_bytes() for c in got}) == 1


def test_a_source_that_is_not_what_the_job_recorded_is_never_converted(
    tmp_path: Path, pools: Any
) -> None:
    conversions = pools()
    source = stored(tmp_path, "job")
    source.path.write_bytes(stored(tmp_path, "other", pitch=440.0).path.read_bytes())
    with pytest.raises(OutputMissing, match="checksum"):
        anyio.run(conversions.get, source, "mp3")
    assert conversions.cache.total_bytes() == 0


def test_an_undecodable_source_is_output_missing(tmp_path: Path, pools: Any) -> None:
    conversions = pools()
    path = tmp_path / "bad.mp3"
    path.write_bytes(b"not audio" * 100)
    source = Source("bad", path, "mp3", RATE, hashlib.sha256(path.read_bytes()).hexdigest())
    with pytest.raises(OutputMissing, match="cannot be decoded"):
        anyio.run(conversions.get, source, "wav")


def test_without_a_cache_each_conversion_is_a_temporary_file(tmp_path: Path, pools: Any) -> None:
    conversions = pools(cache_bytes=0)
    source = stored(tmp_path, "job")
    first = anyio.run(conversions.get, source, "pcm")
    second = anyio.run(conversions.get, source, "pcm")
    assert first.temporary and not first.cache_hit and first.path != second.path
    first_bytes = first.path.read_bytes()
    assert first_bytes == second.path.read_bytes()
    for done in (first, second):
        with open_unlinked(done.path) as fh:  # as a download sends it
            assert not done.path.exists()
            assert fh.read() == first_bytes


def test_conversions_run_in_niced_processes_of_their_own(tmp_path: Path) -> None:
    executor = process_pool(1)
    try:
        pid, niceness = executor.submit(_who).result(timeout=60)
    finally:
        executor.shutdown()
    assert pid != os.getpid()
    assert niceness >= os.nice(0) + min(NICE, 19 - os.nice(0))


def _who() -> tuple[int, int]:
    return os.getpid(), os.nice(0)


def test_a_pool_process_killed_mid_conversion_is_busy_then_a_fresh_pool_serves(
    tmp_path: Path, pools: Any
) -> None:
    conversions = pools(workers=1)
    source = stored(tmp_path, "long", seconds=300.0)

    async def main() -> None:
        async def kill_the_pool() -> None:
            await until(lambda: conversions.running == 1 and conversions._executor is not None)
            executor = conversions._executor
            assert isinstance(executor, ProcessPoolExecutor)
            await until(lambda: bool(executor._processes))
            await until(lambda: any(conversions.cache.root.glob(".tmp-*")))  # mid-write
            for pid in list(executor._processes):
                os.kill(pid, signal.SIGKILL)

        async with anyio.create_task_group() as tg:
            tg.start_soon(kill_the_pool)
            with pytest.raises(Busy) as refused:
                await conversions.get(source, "mp3")
        assert refused.value.details["retry_after"] >= 1
        assert conversions.admitted == 0
        again = await conversions.get(stored(tmp_path, "short"), "mp3")
        assert not again.cache_hit and again.path.stat().st_size > 0

    anyio.run(main)
    # The half-written file stays a temporary one (swept later), never an entry to serve.
    entries = [p for p in conversions.cache.root.iterdir() if not p.name.startswith(".tmp-")]
    assert len(entries) == 1 and conversions.cache.total_bytes() == entries[0].stat().st_size


def test_a_source_removed_since_the_route_looked_is_output_missing(tmp_path: Path) -> None:
    """The pool reports it as missing (410 ``output_missing``), never as an unexpected error."""
    gone = Source("gone", tmp_path / "gone.wav", "wav", RATE, "0" * 64)
    kind, message = make(gone, "mp3", tmp_path / "cache", 1 << 20, "key")
    assert (kind, message) == ("missing", "the output file is missing; run `steadyvoice verify`")
