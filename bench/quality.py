"""Voice adaptation quality: speaker similarity, intelligibility and cost, with and without.

Usage: ``python bench/quality.py [--json PATH] [--root DIR] [--speakers ID,ID] [--texts N]``
(``make bench-quality`` installs what it needs and runs it). For every reference speaker in
bench/references.py it

1. builds the reference, encodes it as a 16-bit WAV and runs the service's own
   ``validate_reference`` and ``analyse_reference`` on it, as an upload does;
2. measures the ceiling: speaker similarity between the two halves of the reference's speech;
3. synthesises each test sentence with the piper engine (voice ``joe``, seed 42) with ``target``
   (the whole adapted path), timing it and ``adapt`` alone on the plain output;
4. scores speaker similarity (SIM: cosine of Resemblyzer d-vectors; the encoder's weights ship
   in the ``resemblyzer`` wheel) of each output against the whole reference, and word error rate
   (WER: pocketsphinx and its bundled US English model, at 16 kHz) against the sentence.

Plain Piper does not depend on the speaker, so it is synthesised (``--repeats`` times, for the
timing), decoded and embedded once per sentence. Two controls put the SIM gain in context:

- *vocoder only*: the same sentences adapted toward an analysis of joe's own plain output, i.e.
  the WORLD analysis/resynthesis round trip with (almost) nothing changed. Any SIM it gains over
  plain Piper is not speaker adaptation.
- *specificity*: SIM of the outputs adapted toward speaker A to A's reference, minus the mean
  SIM of the outputs adapted toward the *other* speakers to A's reference. Above zero means
  adaptation moves the voice toward that speaker in particular, not just away from joe.

It prints Markdown for docs/benchmarks.md (speakers, per-speaker tables, a summary and
PASS/FAIL against the issue's targets) and writes every number to ``--json``. Everything is
seeded; only the timings vary between runs. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import statistics
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))
import references  # a sibling script, not a package
from engine_rtf import cpu_model  # a sibling script too

from steadyvoice.engines.adaptation import adapt, adaptation_version, analyse_reference
from steadyvoice.engines.base import SynthesisRequest, VoiceTarget
from steadyvoice.engines.piper import PiperEngine
from steadyvoice.settings import PiperSettings, VoiceSettings
from steadyvoice.voices.reference import validate_reference

FloatAudio = npt.NDArray[np.float32]
Embedding = npt.NDArray[np.float32]

SEED = 42
VOICE = "joe"
ASR_RATE = 16_000
# Varied English sentences of about 5.5-6.5 s each: statements, a request, a question, numbers
# in words, and vocabulary that pocketsphinx's dictionary knows.
TEXTS: tuple[str, ...] = (
    "The museum opens at nine in the morning, and guided tours leave from the main hall "
    "every half hour until five.",
    "Please remember to bring your passport, your boarding pass, and a pen, because you will "
    "need to fill in a customs form.",
    "After the storm had passed, the children ran outside to look for shells along the wet and "
    "shining beach.",
    "Our quarterly revenue grew by twelve percent, mostly because of strong sales in the "
    "northern region and a mild winter.",
    "Could you tell me whether the last train to the city still stops at the old station near "
    "the river on Sundays?",
    "She poured the warm milk into a blue cup, sat down by the kitchen window, and watched the "
    "snow fall over the garden.",
)

# Targets from the issue.
TARGET_SIM_GAIN = 0.10  # mean SIM with adaptation minus without, at least
TARGET_WER_WORSE = 0.05  # pooled WER with adaptation minus without, at most (5 points)
TARGET_RTF_RATIO = 2.0  # RTF of the whole adapted path over plain Piper's, at most


# --- measuring tools ------------------------------------------------------------------------


def _import_resemblyzer() -> Any:
    """Import resemblyzer, whose dependency webrtcvad imports ``pkg_resources``.

    The ``eval`` extra pins setuptools below 81, which still has it but warns on import.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "pkg_resources is deprecated as an API"
        import resemblyzer

    return resemblyzer


class SpeakerEncoder:
    """Resemblyzer d-vectors (256-d, unit length); SIM is their cosine."""

    def __init__(self) -> None:
        import torch

        torch.manual_seed(0)
        torch.set_num_threads(1)  # a small network: more threads only contend with the rest
        self._resemblyzer = _import_resemblyzer()
        self._encoder = self._resemblyzer.VoiceEncoder("cpu", verbose=False)

    def embed(self, samples: FloatAudio, sample_rate: int) -> Embedding:
        """``preprocess_wav`` resamples to 16 kHz, normalises the level and cuts long pauses."""
        wav = self._resemblyzer.preprocess_wav(samples.astype(np.float32), source_sr=sample_rate)
        return np.asarray(self._encoder.embed_utterance(wav), dtype=np.float32)


class Recognizer:
    """pocketsphinx with its bundled US English acoustic model, language model and dictionary.

    A fresh decoder per utterance: pocketsphinx carries state from one utterance to the next
    (its noise and cepstral-mean estimates), so otherwise a hypothesis would depend on what was
    decoded before it. Loading costs about 0.15 s.
    """

    def transcribe(self, samples: FloatAudio, sample_rate: int) -> str:
        from pocketsphinx import Decoder

        decoder = Decoder(samprate=ASR_RATE, loglevel="FATAL")
        pcm = np.clip(np.round(to_16k(samples, sample_rate) * 32767.0), -32768, 32767)
        decoder.start_utt()
        decoder.process_raw(pcm.astype("<i2").tobytes(), full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        return hyp.hypstr if hyp is not None else ""


def to_16k(samples: FloatAudio, sample_rate: int) -> FloatAudio:
    """Resample with soxr (very high quality); it comes with the eval extra, via librosa."""
    import soxr

    if sample_rate == ASR_RATE:
        return samples.astype(np.float32)
    return np.asarray(soxr.resample(samples, sample_rate, ASR_RATE, quality="VHQ"), np.float32)


def words(text: str) -> list[str]:
    """Lower case, punctuation dropped (apostrophes inside words kept)."""
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower())


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Levenshtein distance over words (substitutions + deletions + insertions)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, 1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp_word in enumerate(hypothesis, 1):
            current[j] = min(
                previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word)
            )
        previous = current
    return previous[-1]


def wer(pairs: Sequence[tuple[str, str]]) -> float:
    """Corpus WER: total word edits over total reference words, across all (text, hyp) pairs."""
    edits = sum(edit_distance(words(text), words(hyp)) for text, hyp in pairs)
    return edits / sum(len(words(text)) for text, _ in pairs)


def cosine(a: Embedding, b: Embedding) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


# --- synthesis (timed) ----------------------------------------------------------------------


@dataclass
class Output:
    """One synthesised sentence, and what was measured on it."""

    text: str
    samples: FloatAudio = field(repr=False)
    sample_rate: int
    seconds: float  # wall time to make it (plain: median Piper time; adapted: whole path)
    adapt_seconds: float = 0.0  # adapt() alone on the plain output (adapted outputs only)
    hypothesis: str = ""
    embedding: Embedding | None = field(default=None, repr=False)

    @property
    def audio_seconds(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass
class Speaker:
    """A reference speaker: the reference, its analysis, and the adapted outputs."""

    spec: references.Speaker
    built: references.Built
    speech_seconds: float
    measurements: dict[str, float]
    analysis: dict[str, Any]
    reference_sha256: str
    speech: FloatAudio = field(repr=False)
    sample_rate: int
    outputs: list[Output] = field(default_factory=list)
    ceiling: float = 0.0
    embedding: Embedding | None = field(default=None, repr=False)


def prepare(spec: references.Speaker, root: Path | None) -> Speaker:
    """Build the reference and take it through the service's upload checks and analysis."""
    built = references.build(spec, root)
    data = references.wav_bytes(built.samples, built.sample_rate)
    reference = validate_reference(data, VoiceSettings())  # raises if the service would refuse
    speech = reference.samples[reference.speech_start : reference.speech_end]
    return Speaker(
        spec=spec,
        built=built,
        speech_seconds=reference.speech_seconds,
        measurements={k: round(float(v), 3) for k, v in reference.measurements.items()},
        analysis=analyse_reference(speech, reference.sample_rate),
        reference_sha256=hashlib.sha256(data).hexdigest(),
        speech=speech,
        sample_rate=reference.sample_rate,
    )


def synthesise_plain(engine: PiperEngine, texts: Sequence[str], repeats: int) -> list[Output]:
    outputs: list[Output] = []
    for text in texts:
        request = SynthesisRequest(text=text, voice=VOICE, seed=SEED)
        times: list[float] = []
        for _ in range(repeats):
            start = time.perf_counter()
            audio = engine.synthesize(request)
            times.append(time.perf_counter() - start)
        outputs.append(Output(text, audio.samples, audio.sample_rate, statistics.median(times)))
    return outputs


def synthesise_adapted(
    engine: PiperEngine, plain: Sequence[Output], target: VoiceTarget
) -> list[Output]:
    """The whole path (engine.synthesize with target) timed, and adapt() alone timed.

    The two must give the same samples: that also checks the engine wiring.
    """
    outputs: list[Output] = []
    for base in plain:
        request = SynthesisRequest(text=base.text, voice=VOICE, seed=SEED, target=target)
        start = time.perf_counter()
        audio = engine.synthesize(request)
        whole = time.perf_counter() - start
        start = time.perf_counter()
        alone = adapt(base.samples, base.sample_rate, target.analysis)
        adapt_seconds = time.perf_counter() - start
        if not np.array_equal(alone, audio.samples):
            raise SystemExit(f"{target.voice_id}: engine output differs from adapt(plain output)")
        outputs.append(Output(base.text, audio.samples, audio.sample_rate, whole, adapt_seconds))
    return outputs


def score(outputs: Sequence[Output], encoder: SpeakerEncoder, asr: Recognizer) -> None:
    for out in outputs:
        out.hypothesis = asr.transcribe(out.samples, out.sample_rate)
        out.embedding = encoder.embed(out.samples, out.sample_rate)


def mean_sim(outputs: Sequence[Output], target: Embedding) -> float:
    return statistics.fmean(cosine(o.embedding, target) for o in outputs if o.embedding is not None)


def pooled_wer(outputs: Sequence[Output]) -> float:
    return wer([(o.text, o.hypothesis) for o in outputs])


# --- report ---------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def analyse_results(
    speakers: list[Speaker], plain: list[Output], control: list[Output]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    piper_total = sum(o.seconds for o in plain)
    for sp in speakers:
        assert sp.embedding is not None
        others = [o for other in speakers if other is not sp for o in other.outputs]
        audio = sum(o.audio_seconds for o in sp.outputs)
        row = {
            "id": sp.spec.id,
            "sex": sp.spec.sex,
            "language": sp.spec.language,
            "package": sp.spec.package,
            "clips": len(sp.built.clips),
            "skipped_clips": list(sp.built.skipped),
            "reference_seconds": round(sp.built.seconds, 3),
            "speech_seconds": round(sp.speech_seconds, 3),
            "sample_rate": sp.sample_rate,
            "measurements": sp.measurements,
            "analysis": sp.analysis,
            "f0_hz": float(np.exp(sp.analysis["f0_log_mean"])),
            "ceiling": sp.ceiling,
            "sim_plain": mean_sim(plain, sp.embedding),
            "sim_vocoder_only": mean_sim(control, sp.embedding),
            "sim_adapted": mean_sim(sp.outputs, sp.embedding),
            "sim_adapted_to_others": mean_sim(others, sp.embedding) if others else None,
            "wer_adapted": pooled_wer(sp.outputs),
            "whole_rtf": sum(o.seconds for o in sp.outputs) / audio,
            "adapt_rtf": sum(o.adapt_seconds for o in sp.outputs) / audio,
            "adapt_fraction_of_piper": sum(o.adapt_seconds for o in sp.outputs) / piper_total,
            "sentences": [
                {
                    "text": o.text,
                    "audio_seconds": round(o.audio_seconds, 3),
                    "sim_plain": cosine(p.embedding, sp.embedding),  # type: ignore[arg-type]
                    "sim_adapted": cosine(o.embedding, sp.embedding),  # type: ignore[arg-type]
                    "hypothesis": o.hypothesis,
                    "whole_seconds": round(o.seconds, 4),
                    "adapt_seconds": round(o.adapt_seconds, 4),
                }
                for o, p in zip(sp.outputs, plain, strict=True)
            ],
        }
        row["sim_gain"] = row["sim_adapted"] - row["sim_plain"]
        if row["sim_adapted_to_others"] is not None:
            row["specificity"] = row["sim_adapted"] - row["sim_adapted_to_others"]
        rows.append(row)

    audio_total = sum(o.audio_seconds for o in plain)
    adapted = [o for sp in speakers for o in sp.outputs]
    summary: dict[str, Any] = {
        "speakers": len(speakers),
        "sentences": len(plain),
        "audio_seconds_per_condition": audio_total,
        "ceiling": statistics.fmean(r["ceiling"] for r in rows),
        "sim_plain": statistics.fmean(r["sim_plain"] for r in rows),
        "sim_vocoder_only": statistics.fmean(r["sim_vocoder_only"] for r in rows),
        "sim_adapted": statistics.fmean(r["sim_adapted"] for r in rows),
        "wer_plain": pooled_wer(plain),
        "wer_vocoder_only": pooled_wer(control),
        "wer_adapted": pooled_wer(adapted),
        "plain_rtf": piper_total / audio_total,
        "whole_rtf": sum(o.seconds for o in adapted) / sum(o.audio_seconds for o in adapted),
        "adapt_rtf": sum(o.adapt_seconds for o in adapted) / sum(o.audio_seconds for o in adapted),
    }
    if len(speakers) > 1:
        summary["specificity"] = statistics.fmean(r["specificity"] for r in rows)
    summary["sim_gain"] = summary["sim_adapted"] - summary["sim_plain"]
    summary["sim_gain_over_vocoder_only"] = summary["sim_adapted"] - summary["sim_vocoder_only"]
    summary["wer_change"] = summary["wer_adapted"] - summary["wer_plain"]
    summary["rtf_ratio"] = summary["whole_rtf"] / summary["plain_rtf"]
    summary["adapt_fraction_of_piper"] = summary["adapt_rtf"] / summary["plain_rtf"]
    summary["targets"] = {
        "sim_gain": verdict(summary["sim_gain"] >= TARGET_SIM_GAIN),
        "wer": verdict(summary["wer_change"] <= TARGET_WER_WORSE),
        "rtf": verdict(summary["rtf_ratio"] <= TARGET_RTF_RATIO),
    }
    return rows, summary


def print_speakers(selected: Sequence[references.Speaker]) -> None:
    print("| id | sex | language | package (version, licence) | files | says | speaker |")
    print("|---|---|---|---|---|---|---|")
    for sp in selected:
        files = ", ".join(f"`/{g}`" for g in sp.globs)
        if sp.exclude:
            files += " except " + ", ".join(f"`{name}`" for name in sp.exclude)
        print(
            f"| {sp.id} | {sp.sex} | {sp.language} | `{sp.package}` {sp.version}, {sp.licence} "
            f"| {files} | {sp.says} | {sp.credit} |"
        )
    print()


def print_report(rows: list[dict[str, Any]], summary: dict[str, Any], meta: dict[str, Any]) -> None:
    s = summary
    print(f"### Voice adaptation quality ({meta['date']})\n")
    print(f"- Machine: {meta['machine']}, nproc={meta['nproc']}, Python {meta['python']}")
    print(
        f"- Engine: piper `{VOICE}`, seed {SEED}, threads={meta['threads']}; adaptation "
        f"`{meta['adaptation_version']}`"
    )
    print(
        f"- SIM: Resemblyzer {meta['resemblyzer']}; WER: pocketsphinx {meta['pocketsphinx']} "
        f"(en-us); {s['sentences']} sentences, {s['audio_seconds_per_condition']:.1f} s of "
        f"audio per condition; run time {meta['run_seconds']:.0f} s\n"
    )
    print(
        "| speaker | sex | ref speech s | F0 Hz | ceiling | SIM plain | SIM vocoder only "
        "| SIM adapted | gain | specificity |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        spec = f"{r['specificity']:+.3f}" if "specificity" in r else "-"
        print(
            f"| {r['id']} | {r['sex']} | {r['speech_seconds']:.1f} | {r['f0_hz']:.0f} | "
            f"{r['ceiling']:.3f} | {r['sim_plain']:.3f} | {r['sim_vocoder_only']:.3f} | "
            f"{r['sim_adapted']:.3f} | {r['sim_gain']:+.3f} | {spec} |"
        )
    print()
    print("| speaker | WER plain | WER adapted | RTF plain | RTF whole path | adapt / Piper time |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['id']} | {s['wer_plain']:.1%} | {r['wer_adapted']:.1%} | "
            f"{s['plain_rtf']:.3f} | {r['whole_rtf']:.3f} | {r['adapt_fraction_of_piper']:.2f} |"
        )
    print()
    print("| measure | plain Piper | vocoder only | adapted | target | result |")
    print("|---|---:|---:|---:|---|---|")
    print(
        f"| mean SIM to the reference (ceiling {s['ceiling']:.3f}) | {s['sim_plain']:.3f} | "
        f"{s['sim_vocoder_only']:.3f} | {s['sim_adapted']:.3f} | gain ≥ +{TARGET_SIM_GAIN:.2f}: "
        f"{s['sim_gain']:+.3f} | {s['targets']['sim_gain']} |"
    )
    print(
        f"| WER, all speakers pooled | {s['wer_plain']:.1%} | {s['wer_vocoder_only']:.1%} | "
        f"{s['wer_adapted']:.1%} | ≤ +{100 * TARGET_WER_WORSE:.0f} points: "
        f"{100 * s['wer_change']:+.1f} | {s['targets']['wer']} |"
    )
    print(
        f"| RTF (synthesis s / audio s) | {s['plain_rtf']:.3f} | - | {s['whole_rtf']:.3f} | "
        f"≤ {TARGET_RTF_RATIO:g}x plain: {s['rtf_ratio']:.2f}x | {s['targets']['rtf']} |"
    )
    print()
    extra = (
        f"; specificity (SIM to own reference minus SIM of outputs adapted to the other "
        f"speakers): {s['specificity']:+.3f}"
        if "specificity" in s
        else ""
    )
    print(
        f"Adaptation alone: RTF {s['adapt_rtf']:.3f}, {s['adapt_fraction_of_piper']:.2f}x Piper's "
        f"own synthesis time. SIM gain over the vocoder-only control: "
        f"{s['sim_gain_over_vocoder_only']:+.3f}{extra}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None, help="write all numbers here")
    parser.add_argument("--root", type=Path, default=None, help="where the packages live (/)")
    parser.add_argument("--speakers", default="", help="comma-separated ids (default: all)")
    parser.add_argument("--texts", type=int, default=len(TEXTS), help="use the first N texts")
    parser.add_argument("--repeats", type=int, default=3, help="plain runs to time (median)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    args = parser.parse_args()
    began = time.perf_counter()

    wanted = [s for s in args.speakers.split(",") if s]
    selected = [s for s in references.SPEAKERS if not wanted or s.id in wanted]
    unknown = set(wanted) - {s.id for s in selected}
    if unknown:
        raise SystemExit(f"unknown speakers: {sorted(unknown)}")
    for spec in selected:  # fail before any slow work if a package is missing
        try:
            references.locate(spec, args.root)
        except references.MissingSource as exc:
            raise SystemExit(str(exc)) from None
    texts = TEXTS[: args.texts]
    speakers = [prepare(spec, args.root) for spec in selected]

    engine = PiperEngine(PiperSettings(threads=args.threads))
    engine.load()
    # Timed work first, alone: Piper, then the whole adapted path per speaker.
    plain = synthesise_plain(engine, texts, args.repeats)
    for sp in speakers:
        print(f"... synthesising for {sp.spec.id}", file=sys.stderr, flush=True)
        target = VoiceTarget(sp.spec.id, sp.analysis, sp.reference_sha256)
        sp.outputs = synthesise_adapted(engine, plain, target)
    joe = np.concatenate([o.samples for o in plain])
    joe_analysis = analyse_reference(joe, plain[0].sample_rate)
    joe_sha256 = hashlib.sha256(joe.tobytes()).hexdigest()
    control = synthesise_adapted(
        engine, plain, VoiceTarget("vocoder-only", joe_analysis, joe_sha256)
    )

    print("... scoring", file=sys.stderr, flush=True)
    encoder = SpeakerEncoder()
    asr = Recognizer()
    score(plain, encoder, asr)
    score(control, encoder, asr)
    for sp in speakers:
        score(sp.outputs, encoder, asr)
        sp.embedding = encoder.embed(sp.speech, sp.sample_rate)
        half = len(sp.speech) // 2
        sp.ceiling = cosine(
            encoder.embed(sp.speech[:half], sp.sample_rate),
            encoder.embed(sp.speech[half:], sp.sample_rate),
        )
    rows, summary = analyse_results(speakers, plain, control)
    meta = {
        "date": datetime.date.today().isoformat(),
        "machine": cpu_model(),
        "nproc": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "threads": args.threads,
        "engine_version": engine.version(VOICE, adapted=True),
        "adaptation_version": adaptation_version(),
        "resemblyzer": importlib.metadata.version("resemblyzer"),
        "pocketsphinx": importlib.metadata.version("pocketsphinx"),
        "run_seconds": time.perf_counter() - began,
    }
    print_speakers(selected)
    print_report(rows, summary, meta)
    if args.json:
        plain_rows = [
            {"text": o.text, "audio_seconds": o.audio_seconds, "piper_seconds": o.seconds}
            | {"hypothesis": o.hypothesis}
            for o in plain
        ]
        control_rows = [{"text": o.text, "hypothesis": o.hypothesis} for o in control]
        data = {
            "meta": meta | {"texts": list(texts)},
            "summary": summary,
            "plain": plain_rows,
            "vocoder_only": control_rows,
            "speakers": rows,
        }
        args.json.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")


if __name__ == "__main__":
    main()
