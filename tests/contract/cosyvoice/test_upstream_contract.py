"""The cosyvoice adapter on upstream CosyVoice's real classes (CPU, tiny random model).

Jobs go through the runner (``run_claimed``) to an engine loaded from the tiny model directory;
a spy on the upstream object records what each call received. The audio is noise: what is
checked is that every path reaches upstream with the arguments upstream expects and comes back
as finite audio at the model's rate.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cosyvoice_contract import MARKS, SPEAKER, TRANSCRIPT, skip_reason

if (_reason := skip_reason()) is not None:
    pytest.skip(_reason, allow_module_level=True)

import numpy as np
import soundfile as sf
from factories import new_job  # type: ignore[import-not-found]
from processes import poll  # type: ignore[import-not-found]

from steadyvoice.engines.base import VoiceTarget
from steadyvoice.engines.cosyvoice import CosyVoiceEngine
from steadyvoice.engines.cosyvoice.prompts import END_OF_PROMPT
from steadyvoice.jobs.chunks import ChunkStore
from steadyvoice.jobs.runner import run_claimed
from steadyvoice.jobs.store import JobStore
from steadyvoice.storage.local import LocalStorage

pytestmark = MARKS
RATE = 24_000
TEXT = "Good morning to everyone here. The train was on time today."
LONG = " ".join(["The quick brown fox jumps over the lazy dog near the river bank."] * 4)
END_OF_PROMPT_ID = 151646
MODES: dict[str, tuple[str, dict[str, Any]]] = {
    "zero_shot": ("inference_zero_shot", {}),
    "cross_lingual": ("inference_cross_lingual", {"cross_lingual": True}),
    "instruct": ("inference_instruct2", {"instructions": "happy"}),
    "speaker": ("inference_sft", {}),
}


@dataclass
class Seen:
    """One upstream call as upstream received it."""

    method: str
    kwargs: dict[str, Any]
    hop: int
    seed: int


@dataclass
class Spy:
    """Wraps the upstream object's inference methods; records calls and their overlap."""

    model: Any
    seen: list[Seen] = field(default_factory=list)
    active: int = 0
    most_active: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> Spy:
        for method, _ in MODES.values():
            monkeypatch.setattr(self.model, method, self._wrap(method, getattr(self.model, method)))
        return self

    def _wrap(self, method: str, original: Callable[..., Iterator[Any]]) -> Callable[..., Any]:
        import torch

        def called(**kwargs: Any) -> Iterator[Any]:
            hop = int(self.model.model.token_hop_len)
            self.seen.append(Seen(method, kwargs, hop, torch.initial_seed()))
            return self._track(original(**kwargs))

        return called

    def _track(self, generator: Iterator[Any]) -> Iterator[Any]:
        with self.lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            yield from generator
        finally:
            with self.lock:
                self.active -= 1


class Profiles:
    """The runner's profile lookup, answering for one reference file."""

    def __init__(self, reference: Path) -> None:
        self.reference = reference
        self.sha = hashlib.sha256(reference.read_bytes()).hexdigest()

    def target_for(self, voice_id: str, tenant: str | None = None) -> VoiceTarget:
        return VoiceTarget(
            voice_id=voice_id,
            analysis={},
            reference_sha256=self.sha,
            reference_path=str(self.reference),
            transcript=TRANSCRIPT,
        )

    def ids_named(self, name: str, tenant: str | None = None) -> list[str]:
        return []


@dataclass
class Bench:
    """A store, storage and profile lookup for running jobs on one engine."""

    engine: CosyVoiceEngine
    store: JobStore
    storage: LocalStorage
    profiles: Profiles

    def job(self, text: str, mode: str, *, stream: bool = False, seed: int = 42) -> str:
        params: dict[str, Any] = {"seed": seed, "speed": 1.0, "format": "wav", "stream": stream}
        params.update(MODES[mode][1])
        voice = SPEAKER
        if mode != "speaker":
            params["voice_profile"] = {"id": "vp_1", "reference_sha256": self.profiles.sha}
            params["base_voice"] = "clone"
            voice = "vp_1"
        version = f"cosyvoice{self.engine.generation}"
        job, _ = self.store.create(
            new_job(text, voice=voice, engine="cosyvoice", engine_version=version, params=params)
        )
        return job.id

    def run(self, job_id: str) -> str:
        claim = self.store.claim("contract:1", 300)
        assert claim is not None and claim.job.id == job_id
        return run_claimed(claim, self.engine, self.store, self.storage, self.profiles)

    def output(self, job_id: str) -> bytes:
        return self.storage.path(self.store.get(job_id).output_name).read_bytes()


def _reference(folder: Path) -> Path:
    """Two seconds of a voiced tone with a little noise, at 24 kHz."""
    rng = np.random.default_rng(3)
    t = np.arange(2 * RATE) / RATE
    tone = 0.3 * np.sin(2 * np.pi * 140 * t) + 0.01 * rng.standard_normal(t.size)
    path = folder / "reference.wav"
    sf.write(str(path), tone.astype(np.float32), RATE)
    return path


def _bench(
    engine: CosyVoiceEngine, tmp_path: Path, store_factory: Callable[[str], JobStore]
) -> Bench:
    store = store_factory(f"sqlite:///{tmp_path / 'jobs.db'}")
    return Bench(engine, store, LocalStorage(tmp_path / "out"), Profiles(_reference(tmp_path)))


def _finite_audio(data: bytes) -> np.ndarray:
    samples, rate = sf.read(io.BytesIO(data), dtype="float32")
    assert rate == RATE
    assert samples.size > 0 and np.isfinite(samples).all()
    return np.asarray(samples)


def _check_prompt(generation: int, seen: Seen, tokenizer: Any) -> None:
    """What upstream received is what upstream's own examples send for that generation."""
    kwargs = seen.kwargs
    texts = [str(kwargs.get(k, "")) for k in ("prompt_text", "tts_text", "instruct_text")]
    marked = [t for t in texts if END_OF_PROMPT in t]
    if seen.method == "inference_instruct2":
        assert kwargs["instruct_text"].endswith(END_OF_PROMPT), kwargs
    elif generation == 2:
        assert marked == [], f"CosyVoice2 takes plain texts: {kwargs}"
    if generation == 3:
        assert marked, f"CosyVoice3 asserts <|endofprompt|>: {kwargs}"
        ids = tokenizer.encode(marked[0])
        assert END_OF_PROMPT_ID in ids, "the marker is the special token upstream looks for"
    if seen.method == "inference_zero_shot":
        assert kwargs["prompt_text"].endswith(TRANSCRIPT)
    if seen.method == "inference_sft":
        assert kwargs["spk_id"] == SPEAKER and "prompt_wav" not in kwargs
    else:
        wav = Path(kwargs["prompt_wav"])  # a path, never a tensor (upstream since 622a3a1)
        assert wav.suffix == ".wav"
        assert kwargs["zero_shot_spk_id"] == ""


@pytest.mark.parametrize("generation", [2, 3])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("mode", list(MODES))
def test_every_mode_reaches_upstream_and_returns_audio(
    engines: Callable[[int], CosyVoiceEngine],
    tmp_path: Path,
    store_factory: Callable[[str], JobStore],
    monkeypatch: pytest.MonkeyPatch,
    generation: int,
    stream: bool,
    mode: str,
) -> None:
    engine = engines(generation)
    bench = _bench(engine, tmp_path, store_factory)
    upstream: Any = engine._require_loaded().model
    spy = Spy(upstream).install(monkeypatch)
    job_id = bench.job(TEXT, mode, stream=stream)
    assert bench.run(job_id) == "succeeded", bench.store.get(job_id).error_message
    samples = _finite_audio(bench.output(job_id))
    assert [s.method for s in spy.seen] == [MODES[mode][0]]
    assert spy.seen[0].kwargs["stream"] is stream
    _check_prompt(generation, spy.seen[0], upstream.frontend.tokenizer)
    job = bench.store.get(job_id)
    assert str(job.engine_version).startswith(f"cosyvoice{generation}+")
    if stream:
        chunks = ChunkStore(bench.store).after(job_id, -1, limit=1000)
        assert chunks and all(c.sample_rate == RATE for c in chunks)
        assert sum(len(c.pcm) // 2 for c in chunks) == samples.size


def test_token_hop_len_is_reset_before_every_call(
    engines: Callable[[int], CosyVoiceEngine],
    tmp_path: Path,
    store_factory: Callable[[str], JobStore],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = engines(2)
    bench = _bench(engine, tmp_path, store_factory)
    upstream = engine._require_loaded().model
    spy = Spy(upstream).install(monkeypatch)
    for _ in range(2):
        assert bench.run(bench.job(LONG, "speaker", stream=True)) == "succeeded"
    assert upstream.model.token_hop_len > 25, "upstream grew its hop while streaming"
    upstream.model.token_hop_len = 100  # as a third upstream stream would leave it
    assert bench.run(bench.job(TEXT, "zero_shot", stream=True)) == "succeeded"
    assert [s.hop for s in spy.seen] == [25, 25, 25]


def test_seed_is_set_before_every_call_and_plain_output_repeats(
    engines: Callable[[int], CosyVoiceEngine],
    tmp_path: Path,
    store_factory: Callable[[str], JobStore],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    engine = engines(2)
    bench = _bench(engine, tmp_path, store_factory)
    spy = Spy(engine._require_loaded().model).install(monkeypatch)
    outputs = []
    for seed in (7, 7, 8):
        torch.rand(1000)  # whatever ran before must not matter
        job_id = bench.job(TEXT, "zero_shot", seed=seed)
        assert bench.run(job_id) == "succeeded"
        outputs.append(bench.output(job_id))
    assert [s.seed for s in spy.seen] == [7, 7, 8]
    assert outputs[0] == outputs[1], "same request, same seed: the same bytes on the CPU"
    assert outputs[0] != outputs[2], "the seed reaches upstream's sampling"


def test_one_synthesis_at_a_time_under_concurrent_jobs(
    engines: Callable[[int], CosyVoiceEngine],
    tmp_path: Path,
    store_factory: Callable[[str], JobStore],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = engines(2)
    bench = _bench(engine, tmp_path, store_factory)
    spy = Spy(engine._require_loaded().model).install(monkeypatch)
    jobs = [
        bench.job(TEXT, "zero_shot"),
        bench.job(TEXT, "speaker", stream=True),
        bench.job(TEXT, "cross_lingual", stream=True),
    ]
    claims = [bench.store.claim(f"contract:{i}", 300) for i in range(len(jobs))]
    results: dict[str, str] = {}

    def run(claim: Any) -> None:
        status = run_claimed(claim, engine, bench.store, bench.storage, bench.profiles)
        results[claim.job.id] = status

    threads = [threading.Thread(target=run, args=(c,)) for c in claims]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert results == dict.fromkeys(jobs, "succeeded")
    assert len(spy.seen) == 3
    assert spy.most_active == 1, "upstream never ran two calls at once"


def _llm_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "(llm_job)" in t.name and t.is_alive()]


def test_a_job_canceled_mid_stream_stops_upstream_and_the_engine_serves_on(
    engines: Callable[[int], CosyVoiceEngine],
    tmp_path: Path,
    store_factory: Callable[[str], JobStore],
) -> None:
    engine = engines(2)
    bench = _bench(engine, tmp_path, store_factory)
    long_text = " ".join([LONG] * 3)
    job_id = bench.job(long_text, "speaker", stream=True)
    result: list[str] = []
    runner = threading.Thread(target=lambda: result.append(bench.run(job_id)))
    runner.start()
    chunks = ChunkStore(bench.store)
    poll(lambda: chunks.after(job_id, -1), 300, "the first streamed chunk", every=0.1)
    assert _llm_threads(), "upstream's LLM thread is still generating"
    bench.store.cancel(job_id)
    runner.join(timeout=300)
    assert result == ["canceled"]
    poll(lambda: not _llm_threads(), 60, "upstream's LLM thread to stop", every=0.1)
    upstream = engine._require_loaded().model.model
    assert upstream.tts_speech_token_dict == {} and upstream.llm_end_dict == {}
    after = bench.job(TEXT, "speaker", stream=True)
    assert bench.run(after) == "succeeded"
    _finite_audio(bench.output(after))


def test_the_engine_version_names_the_checkpoints_content(
    repo: Path, model_dirs: Callable[[int], Path], tmp_path: Path
) -> None:
    import shutil

    from steadyvoice.settings import CosyVoiceSettings

    model = tmp_path / "model"
    shutil.copytree(model_dirs(2), model)

    def version() -> str:
        settings = CosyVoiceSettings(model_dir=model, repo_dir=repo, speakers=[SPEAKER])
        return CosyVoiceEngine(settings, cache_dir=tmp_path / "cache").version(SPEAKER)

    before = version()
    assert version() == before
    import torch

    state = torch.load(model / "flow.pt", weights_only=True)
    first = next(iter(state))
    state[first] = state[first] + 1e-3
    torch.save(state, model / "flow.pt")
    changed = version()
    assert changed != before
    assert changed.split("+model-")[0] == before.split("+model-")[0], "only the model hash moved"


def test_every_instruction_key_is_in_upstreams_own_list(
    engines: Callable[[int], CosyVoiceEngine],
) -> None:
    """CosyVoice3 was trained on upstream's ``instruct_list``; the adapter keeps the keys whose
    sentence is in it, so none may be lost against the real list."""
    from steadyvoice.engines.cosyvoice.prompts import INSTRUCTIONS

    assert engines(3)._require_loaded().formatter.instructions == tuple(INSTRUCTIONS)
