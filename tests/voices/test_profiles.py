"""Voice profiles in the store and the service, on SQLite and PostgreSQL; the isolated checker."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

import numpy as np
import pytest
import soundfile as sf
from speech import reference_wav  # type: ignore[import-not-found]

from steadyvoice.errors import (
    ReferenceTooLarge,
    ReferenceUnreadable,
    UnknownVoice,
    VoiceChecksBusy,
    VoiceDeleted,
    VoiceNotFound,
)
from steadyvoice.jobs.store import JobStore
from steadyvoice.settings import Settings, VoiceSettings
from steadyvoice.storage.local import LocalStorage
from steadyvoice.storage.verify import VerifyReport, verify_references
from steadyvoice.voices.inspection import Inspection, inspect_isolated, inspect_reference
from steadyvoice.voices.profiles import NewVoice, VoiceService
from steadyvoice.voices.store import VoiceStore

CONSENT = "Jane Example consented in writing on 2026-11-25 to cloning for statements."


@pytest.fixture
def service_factory(
    db_url: str,
    settings_factory: Callable[..., Settings],
    store_factory: Callable[[str], JobStore],
) -> Callable[..., VoiceService]:
    """A voice service on the parametrised database, checking uploads in this process."""

    def make(**overrides: object) -> VoiceService:
        settings = settings_factory(**overrides)
        return VoiceService(settings, VoiceStore(store_factory(db_url)), inspect_reference)

    return make


def _new(audio: bytes | None = None, **fields: str) -> NewVoice:
    values = {"name": "Jane", "consent": CONSENT, "requester": "tester"} | fields
    return NewVoice(audio=reference_wav() if audio is None else audio, **values)


def test_create_records_everything_and_reads_back(
    service_factory: Callable[..., VoiceService],
) -> None:
    service = service_factory()
    audio = reference_wav()
    voice = service.create(_new(audio, transcript="  Good morning.  "))
    again = service.get(voice.id)
    assert again.name == "Jane" and again.created_by == "tester"
    assert again.consent == CONSENT and again.transcript == "Good morning."
    assert again.reference_sha256 == hashlib.sha256(audio).hexdigest()
    assert service.reference_path(again).read_bytes() == audio
    assert again.analysis == voice.analysis and again.analysis_version
    assert again.deleted_at is None
    target = service.target_for(voice.id)
    assert target.voice_id == voice.id and target.analysis == voice.analysis
    assert target.reference_sha256 == voice.reference_sha256
    assert target.reference_path == str(service.reference_path(again))


def test_deleted_profiles_stay_on_record_but_cannot_be_used(
    service_factory: Callable[..., VoiceService],
) -> None:
    service = service_factory()
    voice = service.create(_new())
    first = service.delete(voice.id, "admin")
    assert first.deleted_at is not None and first.deleted_by == "admin"
    assert service.delete(voice.id, "other").deleted_by == "admin"
    with pytest.raises(VoiceDeleted):
        service.target_for(voice.id)
    with pytest.raises(UnknownVoice):
        service.target_for("vp_missing")
    with pytest.raises(VoiceNotFound):
        service.delete("vp_missing", "admin")
    assert service.list_voices(False, None, 10) == []
    assert [v.id for v in service.list_voices(True, None, 10)] == [voice.id]
    assert service.reference_path(first).is_file()


def test_a_failed_insert_leaves_no_file(
    service_factory: Callable[..., VoiceService],
    settings_factory: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = service_factory()

    def broken(*_: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(VoiceStore, "add", broken)
    with pytest.raises(RuntimeError):
        service.create(_new())
    root = settings_factory().voices_dir
    assert not any(p.is_file() for p in root.rglob("*"))


def test_uploads_over_the_limit_are_refused_before_checking(
    service_factory: Callable[..., VoiceService],
) -> None:
    service = service_factory(voices={"max_upload_bytes": 64 * 1024})
    with pytest.raises(ReferenceTooLarge):
        service.create(_new(b"\0" * (64 * 1024 + 1)))
    with pytest.raises(ReferenceUnreadable):
        service.create(_new(b""))


def test_verify_finds_missing_and_corrupt_references(
    service_factory: Callable[..., VoiceService], settings_factory: Callable[..., Settings]
) -> None:
    service = service_factory()
    good, bad, gone = (service.create(_new(name=n)) for n in ("good", "bad", "gone"))
    path = service.reference_path(bad)
    path.write_bytes(path.read_bytes()[:-1] + b"\x01")
    service.reference_path(gone).unlink()
    storage = LocalStorage(settings_factory().voices_dir)
    stray = "vp_" + "0" * 32 + "/reference.wav"  # a voice on disk with no consent record
    storage.write_atomic(stray, reference_wav())
    report = verify_references(service.every(), storage, VerifyReport())
    assert report.checked == 3 and report.ok == 1
    assert report.unrecorded == [f"voices/{stray}"]
    assert [line.split()[0] for line in report.corrupt] == [bad.id]
    assert [line.split()[0] for line in report.missing] == [gone.id]
    assert good.id not in " ".join(report.corrupt + report.missing)


# --- the isolated checker ------------------------------------------------------------------


def crash(conn: Connection, data: bytes, limits: VoiceSettings) -> None:
    os.abort()  # what a decoder bug looks like from outside: the process just dies


def hang(conn: Connection, data: bytes, limits: VoiceSettings) -> None:
    time.sleep(3600)


def test_the_isolated_checker_matches_the_in_process_one() -> None:
    limits = VoiceSettings()
    assert inspect_isolated(reference_wav(), limits) == inspect_reference(reference_wav(), limits)


def test_a_crashing_decoder_costs_only_the_upload() -> None:
    with pytest.raises(ReferenceUnreadable, match="decoder stopped"):
        inspect_isolated(reference_wav(), VoiceSettings(), crash)
    assert inspect_isolated(reference_wav(), VoiceSettings()).format == "WAV"


def test_a_hanging_decoder_is_killed_at_the_timeout() -> None:
    limits = VoiceSettings(analysis_timeout_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(ReferenceUnreadable, match="too long"):
        inspect_isolated(reference_wav(), limits, hang)
    assert time.monotonic() - started < 30


def test_a_file_that_needs_too_much_memory_is_refused_not_swapped() -> None:
    # 119 s of silence at 192 kHz: a few hundred KB as FLAC, close to a GB to analyse.
    buf = io.BytesIO()
    sf.write(buf, np.zeros(192_000 * 119, np.int16), 192_000, format="FLAC")
    with pytest.raises(ReferenceUnreadable):
        inspect_isolated(buf.getvalue(), VoiceSettings(analysis_memory_mb=512))
    assert inspect_isolated(reference_wav(), VoiceSettings()).format == "WAV"


def test_only_so_many_checks_run_at_once(
    service_factory: Callable[..., VoiceService],
) -> None:
    service = service_factory(voices={"max_concurrent_checks": 1})
    inside = threading.Event()
    release = threading.Event()
    real = service._inspect

    def slow(data: bytes, limits: VoiceSettings) -> Inspection:
        inside.set()
        release.wait(30)
        return real(data, limits)

    service._inspect = slow
    first = threading.Thread(target=service.create, args=(_new(),))
    first.start()
    try:
        assert inside.wait(30)
        with pytest.raises(VoiceChecksBusy) as refused:
            service.create(_new())
        assert refused.value.status == 503 and refused.value.details["retry_after"] > 0
    finally:
        release.set()
        first.join(30)
    assert len(service.list_voices(False, None, 10)) == 1
