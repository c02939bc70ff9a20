"""Encoding speed of each audio format, one-shot and streamed, for 10 s of Piper speech.

Usage: ``python bench/formats.py [--runs N]``. Prints a Markdown block for docs/benchmarks.md:
per format, the size and bit rate of the file, the median time to encode it in one call
(``formats.encode``), streamed sentence by sentence (``StreamEncoder``), and to decode it back.
"x real time" is seconds of audio encoded per second, one-shot.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_rtf import cpu_model  # a sibling script

from steadyvoice.audio.formats import FORMATS, decode, encode
from steadyvoice.audio.streaming import StreamEncoder
from steadyvoice.engines.base import SynthesisRequest
from steadyvoice.engines.piper import PiperEngine
from steadyvoice.settings import PiperSettings

FloatAudio = npt.NDArray[np.float32]

SECONDS = 10.0
SENTENCES = (
    "The museum opens at nine in the morning, and guided tours leave from the main hall.",
    "Please remember to bring your passport and a pen.",
    "The weather was bright, and the train was on time.",
    "Every request carries a seed, so the same text always sounds the same.",
    "When the queue is empty, the workers simply wait for the next job.",
)


def speech() -> tuple[list[FloatAudio], int]:
    """Exactly ``SECONDS`` of speech as one chunk per sentence, and its rate."""
    engine = PiperEngine(PiperSettings())
    engine.load()
    chunks: list[FloatAudio] = []
    rate, left = 0, 0
    for text in SENTENCES:
        audio = engine.synthesize(SynthesisRequest(text=text, voice="joe"))
        rate = audio.sample_rate
        left = left or int(SECONDS * rate)
        chunks.append(audio.samples[:left])
        left -= len(chunks[-1])
        if left == 0:
            return chunks, rate
    raise SystemExit(f"the sentences make less than {SECONDS} s of speech")


def median_ms(run: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def streamed(fmt: str, chunks: list[FloatAudio], rate: int) -> bytes:
    encoder = StreamEncoder(fmt, rate)
    return b"".join([encoder.feed(chunk) for chunk in chunks] + [encoder.finish()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per cell (default 10)")
    args = parser.parse_args()

    chunks, rate = speech()
    samples = np.concatenate(chunks)
    today = datetime.date.today().isoformat()
    print(f"### Audio formats: encoding {SECONDS:.0f} s of speech ({today})\n")
    cpus = len(os.sched_getaffinity(0))
    print(f"- Machine: {cpu_model()}, nproc={cpus}, Python {platform.python_version()}")
    print(
        f"- PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info}), "
        f"libsndfile {sf.__libsndfile_version__}, soxr {soxr.__version__}"
    )
    print(
        f"- Input: Piper `joe`, {rate} Hz mono, {len(chunks)} sentences; streaming feeds one "
        f"sentence per call. Median of {args.runs} runs.\n"
    )
    print("| format | bytes | kbit/s | one-shot ms | streamed ms | x real time | decode ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for fmt in FORMATS:
        data = encode(samples, rate, fmt)
        one_shot = median_ms(partial(encode, samples, rate, fmt), args.runs)
        stream = median_ms(partial(streamed, fmt, chunks, rate), args.runs)
        decoding = median_ms(partial(decode, data, fmt, sample_rate=rate), 3)
        kbps = len(data) * 8 / SECONDS / 1000
        print(
            f"| {fmt} | {len(data)} | {kbps:.1f} | {one_shot:.1f} | {stream:.1f} "
            f"| {1000 * SECONDS / one_shot:.0f} | {decoding:.1f} |"
        )


if __name__ == "__main__":
    main()
