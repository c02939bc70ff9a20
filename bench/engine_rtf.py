"""Real-time factor of the piper engine (synthesis seconds / audio seconds; below 1 is faster).

Usage: ``python bench/engine_rtf.py [--runs N] [--threads T]``. Prints a Markdown block for
docs/benchmarks.md: the machine, the load time (patch + session + warm-up) and, per text, the
median and worst RTF over ``N`` runs with different seeds.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from pathlib import Path

from steadyvoice.engines.base import SynthesisRequest
from steadyvoice.engines.piper import PiperEngine
from steadyvoice.settings import PiperSettings

TEXTS = {
    "short sentence": "The quick brown fox jumps over the lazy dog.",
    "paragraph (5 sentences)": (
        "The service starts one worker per core and loads the voice once. "
        "Every request carries a seed, so the same text always sounds the same. "
        "Long paragraphs are split into sentences before synthesis. "
        "Each sentence is normalised and joined with a short pause. "
        "When the queue is empty, the workers simply wait for the next job."
    ),
}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def measure(engine: PiperEngine, text: str, runs: int) -> tuple[list[float], float, float, int]:
    """RTFs, audio seconds, median synthesis seconds and sentence count for one text."""
    rtfs: list[float] = []
    seconds: list[float] = []
    audio_seconds, sentences = 0.0, 0
    for seed in range(runs):
        request = SynthesisRequest(text=text, voice=engine.default_voice(), seed=seed)
        start = time.perf_counter()
        audio = engine.synthesize(request)
        elapsed = time.perf_counter() - start
        seconds.append(elapsed)
        rtfs.append(elapsed / audio.duration_seconds)
        audio_seconds, sentences = audio.duration_seconds, audio.sentences
    return rtfs, audio_seconds, statistics.median(seconds), sentences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="syntheses per text (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    args = parser.parse_args()

    engine = PiperEngine(PiperSettings(threads=args.threads))
    start = time.perf_counter()
    engine.load()
    load_seconds = time.perf_counter() - start

    today = datetime.date.today().isoformat()
    print(f"### piper engine real-time factor ({today})\n")
    cpus = len(os.sched_getaffinity(0))
    print(f"- Machine: {cpu_model()}, nproc={cpus}, Python {platform.python_version()}")
    print(
        f"- Voice: `{engine.default_voice()}`, version `{engine.version(engine.default_voice())}`"
    )
    print(
        f"- Settings: threads={args.threads}, runs={args.runs} per text (seeds 0..{args.runs - 1})"
    )
    print(f"- Load time (patch model + open session + warm-up): {load_seconds:.2f} s\n")
    print("| text | sentences | audio s | median synth s | median RTF | worst RTF |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, text in TEXTS.items():
        rtfs, audio_seconds, synth_seconds, sentences = measure(engine, text, args.runs)
        print(
            f"| {label} | {sentences} | {audio_seconds:.2f} | {synth_seconds:.3f} "
            f"| {statistics.median(rtfs):.3f} | {max(rtfs):.3f} |"
        )


if __name__ == "__main__":
    main()
