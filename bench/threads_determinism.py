"""Does the piper voice's audio change with onnxruntime's intra-op thread count?

For every sentence of a varied corpus, several seeds and speeds, the bundled voice is
synthesized with each thread count (pieces one at a time, so only the thread count differs) and
the float samples are compared with those of the first count. The engine version names the
thread count (``+t{threads}``) for as long as any request differs.

    python bench/threads_determinism.py [--threads 1,2,4] [--seeds 0,1,2] [--speeds 1.0,1.25,0.8]
                                        [--limit N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

from steadyvoice.engines.base import SynthesisRequest
from steadyvoice.engines.piper import PiperEngine
from steadyvoice.settings import PiperSettings

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello.",
    "Yes!",
    "Is it raining again?",
    "It was late, the lights were still on, and the kettle was warm.",
    "Nobody said a word.",
    "Please call me back at five thirty this afternoon.",
    "The meeting moved to room four hundred and twelve.",
    "She sells sea shells by the sea shore.",
    "How much wood would a woodchuck chuck if a woodchuck could chuck wood?",
    "Turn left at the second light, then keep right until you see the bakery.",
    "Our order number is seventy-two thousand, nine hundred and one.",
    "The train to Boston leaves from platform nine at a quarter past eight.",
    "Wait: did you remember to lock the back door?",
    "I can't believe it's already December; the year went by so fast.",
    "Thank you for calling. Your call is important to us.",
    "The temperature tonight will drop to minus three degrees.",
    "Peter Piper picked a peck of pickled peppers.",
    "All systems are operating normally.",
    "Warning! The battery level is critically low.",
    "Would you like tea, coffee, or something stronger?",
    "In the beginning, the universe was created; this made a lot of people very angry.",
    "The parcel was delivered to your neighbour at number eleven.",
    "Seven silver swans swam silently seaward, singing softly.",
    "Please remain seated until the aircraft has come to a complete stop.",
    "The library closes early on Sundays and public holidays.",
    "He whispered, almost inaudibly, that the plan had failed.",
    "Mix two cups of flour with one teaspoon of salt and a pinch of sugar.",
    "Oh no!",
    "Well, that went better than expected.",
    "The committee will reconvene after a short recess.",
    "Press one for sales, two for support, or stay on the line.",
    "A journey of a thousand miles begins with a single step.",
    "Unfortunately, the item you requested is out of stock.",
    "The rain in Spain stays mainly in the plain.",
    "Can you hear me now?",
    "Bright sunshine is expected for most of the afternoon across the region.",
    "The museum's new exhibit features paintings from the early nineteenth century.",
    "Don't forget to bring your passport, your ticket, and a warm jacket.",
    "Electric vehicles now account for a growing share of new car sales.",
    "Quietly, carefully, the cat crept closer to the unsuspecting bird.",
    "Your verification code is four, eight, one, five, nine, two.",
    "Three hundred and sixty-five days make a year.",
    "Once upon a time, in a kingdom far away, there lived a curious young girl.",
    "The results were, to put it mildly, surprising.",
    "Please hold.",
    "Good morning, and welcome aboard.",
    "The ship sailed at dawn and reached the harbour just before nightfall.",
    "Why would anyone leave a perfectly good umbrella on the bus?",
    "Remember to water the plants while I'm away.",
    "It was the best of times. It was the worst of times.",
    "Sixty-two percent of respondents said they would recommend the service.",
    "Listen carefully, because the instructions will only be given once.",
    " ".join(["the long road wound through hills and valleys and sleepy towns"] * 4) + ".",
]


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def synthesize_all(threads: int, requests: list[SynthesisRequest]) -> list[np.ndarray[Any, Any]]:
    engine = PiperEngine(PiperSettings(threads=threads, parallel_pieces=1))
    engine.load()
    return [engine.synthesize(request).samples for request in requests]


def compare(base: list[np.ndarray[Any, Any]], other: list[np.ndarray[Any, Any]]) -> dict[str, Any]:
    identical = sum(a.tobytes() == b.tobytes() for a, b in zip(base, other, strict=True))
    lengths = sum(a.shape != b.shape for a, b in zip(base, other, strict=True))
    diffs = [
        float(np.max(np.abs(a - b)))
        for a, b in zip(base, other, strict=True)
        if a.shape == b.shape and a.size
    ]
    return {
        "requests": len(base),
        "identical": identical,
        "different_length": lengths,
        "max_abs_diff": max(diffs, default=0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=_ints, default=[1, 2, 4])
    parser.add_argument("--seeds", type=_ints, default=[0, 1, 2])
    parser.add_argument("--speeds", type=_floats, default=[1.0, 1.25, 0.8])
    parser.add_argument("--limit", type=int, default=len(CORPUS), help="corpus sentences used")
    parser.add_argument("--json", type=Path, help="write the result here too")
    args = parser.parse_args()

    corpus = CORPUS[: args.limit]
    requests = [
        SynthesisRequest(text=text, voice="joe", seed=seed, speed=speed)
        for text in corpus
        for seed in args.seeds
        for speed in args.speeds
    ]
    audio = {threads: synthesize_all(threads, requests) for threads in args.threads}
    base = args.threads[0]
    results = {str(t): compare(audio[base], audio[t]) for t in args.threads[1:]}
    identical = all(r["identical"] == r["requests"] for r in results.values())

    print(f"piper `joe`, {len(corpus)} texts x seeds {args.seeds} x speeds {args.speeds}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    for threads, r in results.items():
        print(
            f"threads {threads} vs {base}: {r['identical']}/{r['requests']} byte-identical, "
            f"{r['different_length']} of other length, max |diff| {r['max_abs_diff']:.3g}"
        )
    verdict = "byte-identical" if identical else "NOT byte-identical: keep +t in the version"
    print(f"verdict: {verdict}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "texts": len(corpus),
                    "seeds": args.seeds,
                    "speeds": args.speeds,
                    "base_threads": base,
                    "cpus": os.cpu_count(),
                    "compared": results,
                    "identical": identical,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
