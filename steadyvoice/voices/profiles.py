"""Voice profiles as a service: create from an upload, read, delete, and resolve for a job."""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from steadyvoice.engines.base import ANY_LANGUAGE, VoiceTarget
from steadyvoice.errors import (
    ConsentMissing,
    InvalidRequest,
    ReferenceTooLarge,
    ReferenceUnreadable,
    TranscriptRequired,
    UnknownVoice,
    VoiceChecksBusy,
    VoiceDeleted,
    VoiceNotFound,
)
from steadyvoice.jobs.models import utcnow
from steadyvoice.languages.codes import primary_code
from steadyvoice.languages.detect import detect
from steadyvoice.observability.logs import event
from steadyvoice.security.principal import DEFAULT_TENANT
from steadyvoice.settings import Settings, VoiceSettings
from steadyvoice.storage.backend import open_storage
from steadyvoice.storage.copies import LocalCopies
from steadyvoice.storage.local import LocalStorage
from steadyvoice.textrules import refuse_control_characters
from steadyvoice.voices.inspection import Inspection, inspect_isolated
from steadyvoice.voices.models import Voice
from steadyvoice.voices.store import VOICE_ID_PREFIX, VoiceStore

log = logging.getLogger("steadyvoice.voices")

MIN_CONSENT_CHARS = 10
EXTENSIONS = {"WAV": "wav", "FLAC": "flac", "OGG": "ogg", "MP3": "mp3"}
MEDIA_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg", "mp3": "audio/mpeg"}

Inspector = Callable[[bytes, VoiceSettings], Inspection]


def size_advice(limits: VoiceSettings) -> str:
    """What to send instead of a recording over ``max_upload_bytes``."""
    return (
        f"; send a shorter recording ({limits.min_speech_seconds:g} to "
        f"{limits.max_speech_seconds:g} s of speech) or a compressed one (FLAC, OGG or MP3)"
    )


def reference_too_large(measured: int, limits: VoiceSettings) -> ReferenceTooLarge:
    """``reference_too_large`` for a recording of ``measured`` bytes."""
    return ReferenceTooLarge.of_size(
        "the recording", measured, limits.max_upload_bytes, advice=size_advice(limits)
    )


def is_profile_id(voice: str) -> bool:
    """Profile ids carry a prefix no engine voice name uses."""
    return voice.startswith(VOICE_ID_PREFIX)


@dataclass(frozen=True)
class NewVoice:
    """An upload as the client sent it."""

    name: str
    consent: str
    audio: bytes
    transcript: str | None = None
    language: str | None = None  # declared by the client; else detected from the transcript
    requester: str = "anonymous"
    request_id: str | None = None
    tenant: str = DEFAULT_TENANT


class VoiceService:
    """Checks uploads at the door, stores the reference and its analysis, resolves profiles."""

    def __init__(
        self,
        settings: Settings,
        store: VoiceStore,
        inspector: Inspector = inspect_isolated,
    ) -> None:
        self._limits = settings.voices
        # CosyVoice clones from the reference recording and what is said in it.
        self._transcript_required = settings.engine == "cosyvoice"
        self._store = store
        self._storage = open_storage(settings, "voices")
        # Engines read a reference from a path: on S3, a copy cached by its SHA-256.
        self._copies = LocalCopies(self._storage, settings.data_dir / "cache" / "references")
        self._inspect = inspector
        # Each check may use up to ``analysis_memory_mb``: bound how many run at once.
        self._checks = threading.BoundedSemaphore(settings.voices.max_concurrent_checks)

    def create(self, new: NewVoice) -> Voice:
        """Validate everything cheap first, then the audio, then record file and row."""
        name, consent, transcript = self._check_fields(new)
        language = recording_language(new.language, transcript)
        if len(new.audio) > self._limits.max_upload_bytes:
            raise reference_too_large(len(new.audio), self._limits)
        if not new.audio:
            raise ReferenceUnreadable("the recording is empty")
        found = self._checked(new.audio)
        voice_id = VOICE_ID_PREFIX + uuid.uuid4().hex
        ref_name = f"{voice_id}/reference.{EXTENSIONS.get(found.format, 'bin')}"
        sha, size = self._storage.put(ref_name, new.audio)
        voice = Voice(
            id=voice_id,
            name=name,
            created_by=new.requester,
            tenant=new.tenant,
            created_at=utcnow(),
            request_id=new.request_id,
            consent=consent,
            transcript=transcript,
            language=language,
            reference_name=ref_name,
            reference_sha256=sha,
            reference_bytes=size,
            reference_format=found.format,
            sample_rate=found.sample_rate,
            channels=found.channels,
            file_seconds=found.file_seconds,
            speech_seconds=found.speech_seconds,
            measurements=found.measurements,
            analysis=found.analysis,
            analysis_version=found.analysis_version,
        )
        try:
            self._store.add(voice)
        except BaseException:
            self._forget_unrecorded(voice_id, ref_name)
            raise
        event(
            log,
            "voice.created",
            voice_id=voice_id,
            reference_sha256=sha,
            speech_seconds=found.speech_seconds,
        )
        return voice

    def _checked(self, audio: bytes) -> Inspection:
        if not self._checks.acquire(blocking=False):
            raise VoiceChecksBusy(
                "other recordings are being checked; retry shortly",
                limit=self._limits.max_concurrent_checks,
                retry_after=5,
            )
        try:
            return self._inspect(audio, self._limits)
        finally:
            self._checks.release()

    def _forget_unrecorded(self, voice_id: str, ref_name: str) -> None:
        """After a failed insert: remove the file unless the row made it after all.

        A connection lost during COMMIT can raise although the row was stored; then the file
        must stay. If the store cannot even be asked, the file stays too, and ``verify`` lists
        it as unrecorded.
        """
        try:
            self._store.get(voice_id)
        except VoiceNotFound:
            self._storage.delete(ref_name)
            if isinstance(self._storage, LocalStorage):  # S3 has no folders to leave behind
                with contextlib.suppress(OSError):
                    self._storage.path(ref_name).parent.rmdir()
        except Exception:  # noqa: BLE001 - the original error is what the caller must see
            log.warning("store unreachable after a failed insert", extra={"voice_id": voice_id})

    def _check_fields(self, new: NewVoice) -> tuple[str, str, str | None]:
        limits = self._limits
        name = _bounded(new.name, "name", limits.max_name_chars)
        if not name:
            raise InvalidRequest("name is empty", field="name")
        consent = _bounded(new.consent, "consent", limits.max_consent_chars)
        if len(consent) < MIN_CONSENT_CHARS:
            raise _consent_refused(len(consent))
        transcript = _bounded(new.transcript or "", "transcript", limits.max_transcript_chars)
        if not transcript and self._transcript_required:
            raise TranscriptRequired(
                "the cosyvoice engine needs the transcript of the recording (what is said in it, "
                "word for word)",
                field="transcript",
            )
        return name, consent, transcript or None

    def get(self, voice_id: str, tenant: str | None = None) -> Voice:
        """The profile; ``voice_not_found`` if missing or, with ``tenant``, another tenant's."""
        return self._store.get(voice_id, tenant)

    def list_voices(
        self,
        include_deleted: bool,
        before: tuple[datetime, str] | None,
        limit: int,
        tenant: str | None = None,
    ) -> list[Voice]:
        return self._store.list_voices(
            include_deleted=include_deleted, before=before, limit=limit, tenant=tenant
        )

    def ids_named(self, name: str, tenant: str | None = None) -> list[str]:
        """Live profiles called ``name`` (any case): a hint for a job that names one by name.

        Names are labels, not unique, so a job must still use the id."""
        if not name.strip() or len(name) > self._limits.max_name_chars:
            return []
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):  # no junk (NUL...) into SQL
            return []
        return self._store.ids_named(name.strip(), tenant)

    def every(self) -> Iterator[Voice]:
        """Every profile, deleted ones included (for verify and backup)."""
        return self._store.every()

    def delete(self, voice_id: str, by: str, tenant: str | None = None) -> Voice:
        voice = self._store.delete(voice_id, by, tenant)
        event(log, "voice.deleted", voice_id=voice_id)
        return voice

    def reanalyse(self, voice_id: str) -> Voice:
        """Analyse the stored reference again with the current code and record the result."""
        voice = self._store.get(voice_id)
        found = self._checked(self.reference_path(voice).read_bytes())
        updated = self._store.set_analysis(voice_id, found.analysis, found.analysis_version)
        event(log, "voice.reanalysed", voice_id=voice_id, analysis_version=found.analysis_version)
        return updated

    def reference_path(self, voice: Voice) -> Path:
        return self._copies.path(voice.reference_name, voice.reference_sha256)

    def target_for(self, voice_id: str, tenant: str | None = None) -> VoiceTarget:
        """The profile a new job may use: ``unknown_voice`` / ``voice_deleted`` otherwise.

        With ``tenant``, another tenant's profile is ``unknown_voice`` like a missing one.
        """
        try:
            voice = self._store.get(voice_id, tenant)
        except VoiceNotFound:
            raise UnknownVoice(f"unknown voice {voice_id!r}", voice=voice_id) from None
        if voice.deleted_at is not None:
            raise VoiceDeleted(
                f"voice {voice_id} was deleted on {voice.deleted_at:%Y-%m-%d %H:%M} UTC; "
                "new jobs cannot use it",
                voice=voice_id,
                deleted_at=voice.deleted_at.isoformat(),
            )
        return VoiceTarget(
            voice_id=voice.id,
            analysis=voice.analysis,
            reference_sha256=voice.reference_sha256,
            analysis_version=voice.analysis_version,
            reference_path=str(self.reference_path(voice)),
            transcript=voice.transcript,
        )


def recording_language(declared: str | None, transcript: str | None) -> str | None:
    """The language of a reference recording: as declared (``de``, ``zh-CN``: its primary code),
    else the transcript's language when detection is sure of it, else None."""
    if declared is not None and declared.strip():
        code = primary_code(declared)
        if code is None or code == ANY_LANGUAGE:
            raise InvalidRequest(
                f"language {declared[:40]!r} is not a language code (such as en, de, zh)",
                field="language",
            )
        return code
    return detect(transcript).language if transcript else None


def _bounded(value: str, field: str, limit: int) -> str:
    text = value.strip()
    refuse_control_characters(text, field)
    if len(text) > limit:
        raise InvalidRequest(
            f"{field} has {len(text)} characters; the limit is {limit}",
            field=field,
            chars=len(text),
            limit=limit,
        )
    return text


def _consent_refused(chars: int) -> ConsentMissing:
    """Missing or too short: say which, and the minimum (``consent_missing`` either way)."""
    what = (
        "a consent statement from the speaker is required"
        if chars == 0
        else f"the consent statement is too short ({chars} characters; at least "
        f"{MIN_CONSENT_CHARS} are needed)"
    )
    return ConsentMissing(
        f"{what}: say who consented, to what, and when",
        field="consent",
        chars=chars,
        min_chars=MIN_CONSENT_CHARS,
    )
