"""Streaming encoders: fed chunk by chunk, every format sends the one-shot file's bytes (WAV
with an open-ended header instead), and sends them while the audio is still coming."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from speech import joe_speech  # type: ignore[import-not-found]

from steadyvoice.audio.formats import CONTENT_TYPES, FORMATS, decode, encode
from steadyvoice.audio.pcm import WAV_HEADER_BYTES, streaming_wav_header
from steadyvoice.audio.streaming import StreamEncoder

Samples = npt.NDArray[np.float32]

RATE = 22_050
STREAMED_AS_ONE_SHOT = ("mp3", "opus", "aac", "flac", "pcm")
# Most audio (ms) a lossy encoder may hold back after a feed (measured on speech: mp3 155,
# aac 140, opus 210 with its two 100 ms Ogg pages), with room for other speech.
MAX_HELD_BACK_MS = {"mp3": 200, "aac": 200, "opus": 260}
DELAY = {"mp3": 1105, "aac": 1024, "opus": 0}


@pytest.fixture(scope="module")
def speech() -> Samples:
    samples, rate = joe_speech()
    assert rate == RATE
    return np.asarray(samples, dtype=np.float32)


def sentences(samples: Samples) -> list[Samples]:
    """Uneven chunks, like sentences of different lengths (and one empty)."""
    cuts = [1, 9_000, 9_000, 40_321, 77_777, 120_000]
    return np.split(samples, cuts)


def stream(fmt: str, chunks: list[Samples], **kwargs: int) -> list[bytes]:
    encoder = StreamEncoder(fmt, RATE, **kwargs)
    return [encoder.feed(chunk) for chunk in chunks] + [encoder.finish()]


@pytest.mark.parametrize("fmt", STREAMED_AS_ONE_SHOT)
def test_streamed_bytes_are_the_one_shot_file(speech: Samples, fmt: str) -> None:
    assert b"".join(stream(fmt, sentences(speech))) == encode(speech, RATE, fmt)


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "pcm"])
def test_any_chunking_gives_the_same_bytes(speech: Samples, fmt: str) -> None:
    clip = speech[30_000:45_000]
    for size in (1, 7, 577, 4096):
        chunks = [clip[i : i + size] for i in range(0, len(clip), size)]
        assert b"".join(stream(fmt, chunks)) == encode(clip, RATE, fmt), size


@pytest.mark.parametrize("fmt", ["pcm", "opus", "wav"])
def test_streaming_with_an_output_rate(speech: Samples, fmt: str) -> None:
    streamed = b"".join(stream(fmt, sentences(speech), output_rate=24_000))
    one_shot = encode(speech, RATE, fmt, output_rate=24_000)
    if fmt == "wav":
        assert streamed[WAV_HEADER_BYTES:] == one_shot[WAV_HEADER_BYTES:]
        assert streamed[:WAV_HEADER_BYTES] == streaming_wav_header(24_000)
    else:
        assert streamed == one_shot


def test_streamed_wav_differs_from_the_file_in_its_two_sizes_only(speech: Samples) -> None:
    parts = stream("wav", sentences(speech))
    streamed, stored = b"".join(parts), encode(speech, RATE, "wav")
    assert parts[0].startswith(streaming_wav_header(RATE))
    assert len(streamed) == len(stored)
    differing = [i for i, (a, b) in enumerate(zip(streamed, stored, strict=True)) if a != b]
    assert differing == [4, 5, 6, 7, 40, 41, 42, 43]
    assert streamed[4:8] == streamed[40:44] == b"\xff\xff\xff\xff"
    decoded, rate = decode(streamed, "wav")
    assert rate == RATE
    np.testing.assert_array_equal(decoded, decode(stored, "wav")[0])


def test_streaming_wav_header_is_encode_wav_header_with_open_sizes() -> None:
    stored = encode(np.zeros(10, dtype=np.float32), 16_000, "wav")[:WAV_HEADER_BYTES]
    header = streaming_wav_header(16_000)
    assert header[:4] + header[8:40] == stored[:4] + stored[8:40]


@pytest.mark.parametrize("fmt", ["mp3", "aac", "opus", "pcm", "wav"])
def test_audio_is_sent_while_it_is_being_made(speech: Samples, fmt: str) -> None:
    encoder = StreamEncoder(fmt, RATE)
    sent, fed = b"", 0
    for chunk in np.array_split(speech, 8):
        sent += encoder.feed(chunk)
        fed += len(chunk)
        if fmt in ("pcm", "wav"):
            assert len(sent) == 2 * fed + (WAV_HEADER_BYTES if fmt == "wav" else 0)
            continue
        decoded, rate = decode(sent, fmt)
        playable = len(decoded) * RATE / rate - DELAY[fmt]
        assert (fed - playable) / RATE * 1000 < MAX_HELD_BACK_MS[fmt]


def test_flac_is_held_until_the_end(speech: Samples) -> None:
    parts = stream("flac", sentences(speech))
    assert parts[:-1] == [b""] * (len(parts) - 1)
    assert parts[-1] == encode(speech, RATE, "flac")


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_empty_stream(fmt: str) -> None:
    encoder = StreamEncoder(fmt, RATE)
    data = encoder.feed(np.zeros(0, dtype=np.float32)) + encoder.finish()
    assert data == (streaming_wav_header(RATE) if fmt == "wav" else b"")
    assert encoder.content_type == CONTENT_TYPES[fmt]


def test_an_encoder_is_used_once(speech: Samples) -> None:
    encoder = StreamEncoder("mp3", RATE)
    encoder.feed(speech[:1000])
    encoder.finish()
    with pytest.raises(ValueError, match="after finish"):
        encoder.feed(speech[:1000])
    with pytest.raises(ValueError, match="twice"):
        encoder.finish()
    with pytest.raises(ValueError, match="unknown audio format"):
        StreamEncoder("ogg", RATE)
