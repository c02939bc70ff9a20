"""Block-by-block conversion: the same bytes as decoding and encoding the whole file, in every
format pair, in a few MB whatever the length."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from speech import joe_speech  # type: ignore[import-not-found]

from steadyvoice.audio.conversion import BLOCK, Undecodable, conversion_tag, convert
from steadyvoice.audio.formats import FORMATS, decode, encode

Samples = npt.NDArray[np.float32]
RATE = 22_050


def tone(seconds: float, rate: int) -> Samples:
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(7).standard_normal(t.shape[0]) * 0.01
    return np.asarray(0.3 * np.sin(2 * np.pi * 220 * t) + noise, dtype=np.float32)


def whole(data: bytes, source: str, target: str, rate: int) -> bytes:
    """What the download route did before: decode all of it, encode all of it."""
    samples, decoded_rate = decode(data, source, sample_rate=rate)
    return encode(samples, decoded_rate, target, output_rate=rate)


def converted(path: Path, source: str, target: str, rate: int) -> bytes:
    out = io.BytesIO()
    convert(path, source, target, rate, out)
    return out.getvalue()


@pytest.mark.parametrize("source", FORMATS)
def test_every_pair_gives_the_whole_file_bytes(source: str, tmp_path: Path) -> None:
    # Real speech, longer than a block, so blocks are cut mid-sentence.
    said, rate = joe_speech()
    assert rate == RATE
    speech = np.concatenate([said, said[: BLOCK // 3]])
    assert len(speech) > BLOCK
    path = tmp_path / f"out.{source}"
    path.write_bytes(encode(speech, RATE, source))
    for target in FORMATS:
        if target != source:
            got = converted(path, source, target, RATE)
            assert got == whole(path.read_bytes(), source, target, RATE), (source, target)
            assert decode(got, target, sample_rate=RATE)[0].size > 0


@pytest.mark.parametrize("target", FORMATS)
def test_a_file_with_no_samples_converts_as_the_whole_file_does(
    target: str, tmp_path: Path
) -> None:
    empty = np.zeros(0, dtype=np.float32)
    for source in ("wav", "pcm"):  # the stored formats that can hold no audio
        path = tmp_path / f"empty.{source}"
        path.write_bytes(encode(empty, RATE, source))
        assert converted(path, source, target, RATE) == whole(
            path.read_bytes(), source, target, RATE
        )


@pytest.mark.parametrize(("source", "target"), [("wav", "mp3"), ("mp3", "flac"), ("opus", "wav")])
def test_memory_stays_flat_for_a_long_file(source: str, target: str, tmp_path: Path) -> None:
    rate = 16_000
    audio = tone(180.0, rate)  # 11.5 MB as float32: what a whole-file decode holds at least
    path = tmp_path / f"long.{source}"
    path.write_bytes(encode(audio, rate, source))
    del audio
    with (tmp_path / f"long-out.{target}").open("w+b") as out:
        tracemalloc.start()
        try:
            convert(path, source, target, rate, out)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert out.tell() > 0
    assert peak < 4 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


@pytest.mark.parametrize("source", ["wav", "flac", "mp3", "opus", "aac"])
def test_a_file_that_is_not_its_format_is_undecodable(source: str, tmp_path: Path) -> None:
    path = tmp_path / f"bad.{source}"
    path.write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(Undecodable):
        convert(path, source, "wav", RATE, io.BytesIO())


def test_the_tag_names_the_libraries_of_both_ends() -> None:
    tag = conversion_tag("wav", "mp3")
    assert "mp3+mp3-av" in tag and tag.startswith("conv")
    assert conversion_tag("wav", "mp3") != conversion_tag("flac", "mp3")
    assert conversion_tag("wav", "mp3") != conversion_tag("wav", "aac")
