"""Piper's audio estimate errs short (a refusal at submit must be sure), and its pieces count
toward a job's audio cap while they are made."""

from __future__ import annotations

import pytest

from steadyvoice.engines.base import SynthesisRequest
from steadyvoice.engines.budget import capped
from steadyvoice.engines.piper import PiperEngine
from steadyvoice.errors import AudioTooLong
from steadyvoice.settings import PiperSettings
from steadyvoice.text import normalize_english

TEXTS = {
    "prose": "The quick brown fox jumps over the lazy dog, and the dog does not mind at all. "
    "Requests queue instead of timing out, and the same input gives the same audio.",
    "numbers": normalize_english("Call 555 0134 before 10:30 on 12 March 2026, or pay $1,250."),
    "short sentences": "Hi. OK. Yes. No. Go! Stop. Wait. Now.",
}


@pytest.fixture(scope="module")
def engine() -> PiperEngine:
    engine = PiperEngine(PiperSettings(parallel_pieces=2))
    engine.load()
    return engine


@pytest.mark.parametrize("name", TEXTS)
@pytest.mark.parametrize("speed", [1.0, 2.0])
def test_the_estimate_is_at_most_the_audio(engine: PiperEngine, name: str, speed: float) -> None:
    request = SynthesisRequest(text=TEXTS[name], voice="joe", speed=speed)
    made = engine.synthesize(request).duration_seconds
    estimate = engine.estimate_seconds(request)
    assert estimate <= made
    if name != "short sentences":  # their pauses are most of their audio
        assert estimate >= 0.5 * made


def test_the_cap_stops_piper_while_it_works(engine: PiperEngine) -> None:
    request = SynthesisRequest(text=TEXTS["prose"], voice="joe")
    with capped(1.0), pytest.raises(AudioTooLong) as caught:
        engine.synthesize(request)
    assert caught.value.details["limit"] == 1.0
