"""Piper pieces made on several cores give the bytes of the one-at-a-time run, in any order."""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from steadyvoice.cpus import CoreSlots
from steadyvoice.engines.base import SynthesisRequest
from steadyvoice.engines.pieces import PieceRunner
from steadyvoice.engines.piper import PiperEngine
from steadyvoice.settings import PiperSettings

T = TypeVar("T")

TEXTS = [
    "It was late. The lights were still on, and the kettle was warm. Nobody said a word.",
    "When the last train left the station and the platform lights went out one by one, the "
    "guard locked the gate. He walked home. It had been a long day!",
    " ".join(["seven silver swans swam silently seaward"] * 6) + ". Then they rested.",
    "Short one.",
]


class ReversedRunner(PieceRunner):
    """Makes every piece last first, then hands them back in order: order must not matter."""

    def __init__(self) -> None:
        super().__init__(1, CoreSlots(1, Path("/nonexistent")))

    def run(
        self, count: int, work: Callable[[int], T], sizes: Sequence[int] | None = None
    ) -> Generator[T, None, None]:
        made = {i: work(i) for i in reversed(range(count))}
        return (made[i] for i in range(count))


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PiperEngine]:
    cores = CoreSlots(4, tmp_path_factory.mktemp("cores"))  # private: always free here
    made = {
        "sequential": PiperEngine(PiperSettings(parallel_pieces=1), cores=cores),
        "parallel": PiperEngine(PiperSettings(parallel_pieces=4), cores=cores),
        "small pieces": PiperEngine(
            PiperSettings(parallel_pieces=4, max_sentence_phonemes=60), cores=cores
        ),
        "small pieces, sequential": PiperEngine(
            PiperSettings(parallel_pieces=1, max_sentence_phonemes=60), cores=cores
        ),
    }
    for engine in made.values():
        engine.load()
    return made


def _request(text: str, **fields: Any) -> SynthesisRequest:
    return SynthesisRequest(text=text, voice="joe", **fields)


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize(("seed", "speed"), [(7, 1.3), (123_456, 0.8)])
def test_parallel_pieces_give_the_sequential_bytes(
    engines: dict[str, PiperEngine], text: str, seed: int, speed: float
) -> None:
    request = _request(text, seed=seed, speed=speed)
    sequential = engines["sequential"].synthesize(request)
    parallel = engines["parallel"].synthesize(request)
    assert parallel.samples.tobytes() == sequential.samples.tobytes()
    assert parallel.sentences == sequential.sentences


@pytest.mark.parametrize("text", TEXTS[:3])
def test_parallel_stream_gives_the_sequential_chunks_in_order(
    engines: dict[str, PiperEngine], text: str
) -> None:
    request = _request(text, seed=5)
    sequential = [c.samples.tobytes() for c in engines["sequential"].stream(request)]
    parallel = [c.samples.tobytes() for c in engines["parallel"].stream(request)]
    assert parallel == sequential
    whole = engines["parallel"].synthesize(request).samples.tobytes()
    assert b"".join(parallel) == whole


def test_many_small_pieces_agree(engines: dict[str, PiperEngine]) -> None:
    request = _request(TEXTS[1], seed=3)
    parallel = engines["small pieces"].synthesize(request).samples
    sequential = engines["small pieces, sequential"].synthesize(request).samples
    assert np.array_equal(parallel, sequential)


def test_piece_order_does_not_change_the_audio(
    engines: dict[str, PiperEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = engines["parallel"]
    request = _request(TEXTS[0], seed=11)
    in_order = engine.synthesize(request).samples.tobytes()
    monkeypatch.setattr(engine, "_runner", ReversedRunner())
    assert engine.synthesize(request).samples.tobytes() == in_order


def test_parallel_pieces_are_not_part_of_the_version(engines: dict[str, PiperEngine]) -> None:
    assert engines["sequential"].version("joe") == engines["parallel"].version("joe")


def test_a_stream_closed_early_can_be_followed_by_more_work(
    engines: dict[str, PiperEngine],
) -> None:
    engine = engines["parallel"]
    chunks = engine.stream(_request(TEXTS[1], seed=1))
    next(chunks)
    chunks.close()  # the client went away: the lanes finish their piece and stop
    again = engine.synthesize(_request(TEXTS[0], seed=2)).samples
    assert np.array_equal(
        again, engines["sequential"].synthesize(_request(TEXTS[0], seed=2)).samples
    )
