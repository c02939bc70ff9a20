"""How cosyvoice's modes reach it from the service: profiles need a transcript, job params map to
the request, and engines that cannot follow instructions refuse them."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from speech import reference_wav  # type: ignore[import-not-found]

from steadyvoice.engines.base import SynthesisRequest, check_request
from steadyvoice.engines.registry import build_engine
from steadyvoice.errors import InvalidRequest, TranscriptRequired
from steadyvoice.jobs.runner import request_for
from steadyvoice.jobs.store import Claim, JobStore
from steadyvoice.settings import Settings
from steadyvoice.voices.inspection import inspect_reference
from steadyvoice.voices.profiles import NewVoice, VoiceService
from steadyvoice.voices.store import VoiceStore

CONSENT = "Jane Example consented in writing on 2026-11-25 to cloning for statements."


def _service(settings: Settings, store_factory: Callable[[str], JobStore]) -> VoiceService:
    store = store_factory(settings.resolved_database_url)
    return VoiceService(settings, VoiceStore(store), inspect_reference)


def test_a_cosyvoice_profile_needs_its_transcript(
    settings_factory: Callable[..., Settings], store_factory: Callable[[str], JobStore]
) -> None:
    service = _service(settings_factory(engine="cosyvoice"), store_factory)
    new = NewVoice(name="Jane", consent=CONSENT, audio=reference_wav(), transcript="   ")
    with pytest.raises(TranscriptRequired) as caught:
        service.create(new)
    assert caught.value.code == "transcript_required" and caught.value.status == 422
    assert caught.value.details == {"field": "transcript"}
    made = service.create(
        NewVoice(name="Jane", consent=CONSENT, audio=reference_wav(), transcript="Hi.")
    )
    assert made.transcript == "Hi."


def test_other_engines_take_profiles_without_a_transcript(
    settings_factory: Callable[..., Settings], store_factory: Callable[[str], JobStore]
) -> None:
    service = _service(settings_factory(engine="fake"), store_factory)
    voice = service.create(NewVoice(name="Jane", consent=CONSENT, audio=reference_wav()))
    assert voice.transcript is None


def _claim(params: dict[str, Any]) -> Claim:
    job: Any = SimpleNamespace(
        text="Hello.", spoken_text=None, voice="clone", params=params
    )  # what request_for reads
    return Claim(job=job, worker_id="host:1", attempt=1)


def test_job_params_select_instructions_and_cross_lingual() -> None:
    plain = request_for(_claim({"seed": 3, "speed": 1.0}))
    assert plain.instructions is None and plain.cross_lingual is False and plain.seed == 3
    styled = request_for(_claim({"seed": 3, "instructions": "cantonese"}))
    assert styled.instructions == "cantonese"
    assert request_for(_claim({"cross_lingual": True})).cross_lingual is True


@pytest.mark.parametrize("fields", [{"instructions": "happy"}, {"cross_lingual": True}])
def test_engines_without_modes_refuse_them(
    settings_factory: Callable[..., Settings], fields: dict[str, Any]
) -> None:
    engine = build_engine(settings_factory(engine="fake"))
    with pytest.raises(InvalidRequest, match="fake"):
        check_request(engine, SynthesisRequest("Hi.", voice="alpha", **fields))
    check_request(engine, SynthesisRequest("Hi.", voice="alpha"))
