"""A job's size after normalization: the spoken-character cap and the audio cap, refused at submit
(``RequestChecks``, which every route and ``synth`` run) and enforced in the worker while the
audio is made."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from factories import new_job  # type: ignore[import-not-found]

from steadyvoice.engines.base import Audio, SynthesisRequest, VoiceTarget
from steadyvoice.engines.fake import FakeEngine
from steadyvoice.errors import AudioTooLong, SpokenTextTooLong
from steadyvoice.jobs.chunks import ChunkStore
from steadyvoice.jobs.runner import run_claimed
from steadyvoice.jobs.store import Claim, JobStore
from steadyvoice.jobs.submit import JobRequest, RequestChecks
from steadyvoice.jobs.synth import synthesize
from steadyvoice.security.principal import Principal, Role
from steadyvoice.settings import FakeSettings, Settings
from steadyvoice.storage.local import LocalStorage

DIGITS = "1234567890" * 500  # 5,000 characters: about 25,000 once spelled out
CALLER = Principal("k1", "acme", Role.OPERATOR, 600, 50)
SENTENCES = " ".join(f"Sentence number {n} is said here." for n in range(1, 21))


def _checks(settings: Settings) -> RequestChecks:
    return RequestChecks(settings, FakeEngine(settings.fake), None)


def test_a_text_of_digits_is_refused_for_its_spoken_length(
    settings_factory: Callable[..., Settings],
) -> None:
    with pytest.raises(SpokenTextTooLong) as caught:
        _checks(settings_factory()).validate(JobRequest(DIGITS), CALLER)
    err = caught.value
    assert err.code == "spoken_text_too_long" and err.status == 422
    assert err.details["text_chars"] == 5_000
    assert err.details["chars"] > 20_000
    assert err.details["limit"] == 10_000
    assert f"the text has {err.details['chars']} characters once numbers" in err.message
    assert "split the text" in err.message


def test_the_spoken_cap_counts_what_is_spoken(settings_factory: Callable[..., Settings]) -> None:
    checks = _checks(settings_factory(api={"max_spoken_chars": 600}))
    # 150 digits as sent, about 700 as spoken; not normalized, it is spoken as sent.
    with pytest.raises(SpokenTextTooLong):
        checks.validate(JobRequest("1234567890" * 15), CALLER)
    new = checks.validate(JobRequest("1234567890" * 15, normalize=False), CALLER)
    assert new.spoken_text is None


def test_the_audio_cap_is_refused_at_submit_from_the_estimate(
    settings_factory: Callable[..., Settings],
) -> None:
    checks = _checks(settings_factory(jobs={"max_audio_seconds": 12}))
    new = checks.validate(JobRequest("A short one."), CALLER)
    assert new.estimated_seconds is not None and 0 < new.estimated_seconds < 1
    with pytest.raises(AudioTooLong) as caught:
        checks.validate(JobRequest(SENTENCES), CALLER)  # about 40 s
    err = caught.value
    assert err.code == "audio_too_long" and err.status == 422
    assert err.details["estimated"] is True
    assert err.details["seconds"] > 36 and err.details["limit"] == 12
    assert f"would make about {err.details['seconds']:.0f} s of audio; the limit is 12 s" in (
        err.message
    )
    # Speaking faster makes less audio: the same text at 4x fits.
    fast = checks.validate(JobRequest(SENTENCES, speed=4.0), CALLER).estimated_seconds
    assert fast is not None and fast < 12


@pytest.mark.parametrize("speed", [0.5, 1.0, 2.0])
def test_the_fake_engines_estimate_is_exact(speed: float) -> None:
    engine = FakeEngine(FakeSettings())
    for text in ("Hi.", SENTENCES, "A lead clause, then the rest of it. And more."):
        request = SynthesisRequest(text=text, voice="alpha", speed=speed)
        assert engine.estimate_seconds(request) == engine.synthesize(request).duration_seconds


def test_synth_runs_the_same_caps(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(jobs={"max_audio_seconds": 5})
    engine = FakeEngine(settings.fake)
    with pytest.raises(SpokenTextTooLong):
        synthesize(settings, engine, JobRequest(DIGITS))
    with pytest.raises(AudioTooLong):
        synthesize(settings, engine, JobRequest(SENTENCES))


# --- the hard stop in the worker ------------------------------------------------------------


@pytest.fixture
def tones(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The index of every tone the fake engine makes, in order."""
    made: list[int] = []
    tone = FakeEngine._tone

    def counted(sentence: str, index: int, request: SynthesisRequest, rate: int) -> np.ndarray:
        made.append(index)
        return tone(sentence, index, request, rate)

    monkeypatch.setattr(FakeEngine, "_tone", staticmethod(counted))
    return made


def _claim(store: JobStore, text: str, **params: object) -> Claim:
    job, _ = store.create(
        new_job(text, params={"seed": 42, "speed": 1.0, "format": "wav", **params})
    )
    claim = store.claim("host:1", 30)
    assert claim is not None and claim.job.id == job.id
    return claim


def _no_output(storage: LocalStorage) -> bool:
    return not [p for p in storage.root.rglob("*") if p.is_file()]


def test_the_worker_stops_a_job_at_its_audio_cap(
    store: JobStore, tmp_path: Path, tones: list[int]
) -> None:
    storage = LocalStorage(tmp_path / "out")
    claim = _claim(store, SENTENCES)  # 20 sentences of about 1.9 s each, accepted without a cap
    status = run_claimed(claim, FakeEngine(FakeSettings()), store, storage, max_audio_seconds=5.0)
    assert status == "failed"
    job = store.get(claim.job.id)
    assert job.error_code == "audio_too_long"
    assert "more than 5 s of audio" in (job.error_message or "")
    assert job.sha256 is None and _no_output(storage)
    # It stopped at the piece that passed the cap: 3 of the 20 pieces were made, not all.
    assert len(tones) == 3


def test_a_streamed_job_publishes_no_more_than_its_cap(
    store: JobStore, tmp_path: Path, tones: list[int]
) -> None:
    storage = LocalStorage(tmp_path / "out")
    claim = _claim(store, SENTENCES, stream=True)
    assert run_claimed(
        claim, FakeEngine(FakeSettings()), store, storage, max_audio_seconds=5.0
    ) == ("failed")
    assert store.get(claim.job.id).error_code == "audio_too_long"
    published = ChunkStore(store).after(claim.job.id, -1, limit=1000)
    seconds = sum(len(c.pcm) // 2 / c.sample_rate for c in published)
    assert 0 < seconds <= 5.0
    assert len(tones) == len(published) + 1
    assert _no_output(storage)


def test_no_cap_makes_the_whole_job(store: JobStore, tmp_path: Path, tones: list[int]) -> None:
    storage = LocalStorage(tmp_path / "out")
    claim = _claim(store, SENTENCES)
    assert run_claimed(claim, FakeEngine(FakeSettings()), store, storage) == "succeeded"
    assert len(tones) == 20
    assert store.get(claim.job.id).duration_seconds == pytest.approx(37.86, abs=0.01)


class _OneShot(FakeEngine):
    """An engine that reports nothing while it works: all of its audio comes back at once."""

    def synthesize(self, request: SynthesisRequest) -> Audio:
        return Audio(samples=np.zeros(16_000 * 8, np.float32), sample_rate=16_000)

    def stream(self, request: SynthesisRequest) -> Iterator[Audio]:
        for _ in range(8):
            yield Audio(samples=np.zeros(16_000, np.float32), sample_rate=16_000)

    def check_target(self, target: VoiceTarget) -> None:
        return None


@pytest.mark.parametrize("stream", [False, True])
def test_audio_from_an_engine_that_does_not_report_is_capped_too(
    store: JobStore, tmp_path: Path, stream: bool
) -> None:
    storage = LocalStorage(tmp_path / "out")
    claim = _claim(store, "Hello there.", **({"stream": True} if stream else {}))
    engine = _OneShot(FakeSettings())
    assert run_claimed(claim, engine, store, storage, max_audio_seconds=5.0) == "failed"
    assert store.get(claim.job.id).error_code == "audio_too_long"
    assert _no_output(storage)
    if stream:  # the chunk that would pass the cap is never published
        assert len(ChunkStore(store).after(claim.job.id, -1)) == 5
