"""Speed of English text normalization and sentence splitting on 5,000 characters (the default
``api.max_text_chars``).

Usage: ``python bench/text_normalize.py [--runs N]``. Prints a Markdown block: the machine and,
per text, the median and worst time over ``N`` runs of ``normalize_english`` and of
``split_sentences`` on the normalized text.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_rtf import cpu_model  # a sibling script

from steadyvoice.text import NORMALIZATION_VERSION, normalize_english, split_sentences

CHARS = 5_000
MAX_CHARS = 300
TEXTS = {
    "plain prose (nothing to normalize)": (
        "The service starts one worker per core and loads the voice once. Every request carries "
        "a seed, so the same text always sounds the same. "
    ),
    "dense (numbers, money, dates, times, phones)": (
        "On 2026-11-25 at 9:30 am, Dr. Smith paid $1,234.56 (12% more than in 1999) for 3.5 kg; "
        "call 555-123-4567 or quote account 12345678, e.g. the 22nd item. "
    ),
}


def timed(call: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median and worst milliseconds over ``runs`` calls, after one warm-up call."""
    call()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), max(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    print(f"### Text normalization ({NORMALIZATION_VERSION}), {datetime.date.today()}")
    print(f"{cpu_model()}, one thread, {CHARS} characters of input, {args.runs} runs.\n")
    print("| text | normalized chars | normalize median / worst ms | split median / worst ms |")
    print("| --- | ---: | ---: | ---: |")
    for name, sample in TEXTS.items():
        text = (sample * (CHARS // len(sample) + 1))[:CHARS]
        spoken = normalize_english(text)
        norm_median, norm_worst = timed(partial(normalize_english, text), args.runs)
        split_median, split_worst = timed(partial(split_sentences, spoken, MAX_CHARS), args.runs)
        print(
            f"| {name} | {len(spoken)} | {norm_median:.1f} / {norm_worst:.1f} "
            f"| {split_median:.2f} / {split_worst:.2f} |"
        )


if __name__ == "__main__":
    main()
