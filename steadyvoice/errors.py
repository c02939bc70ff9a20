"""One error hierarchy. Each error has a stable machine ``code``, an HTTP status and details."""

from __future__ import annotations

from typing import Any, ClassVar, Self


class SteadyVoiceError(Exception):
    """Base of every error the service reports; the API maps it to ``{error: {code, message}}``."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}


class InvalidRequest(SteadyVoiceError):
    """The request is malformed or a parameter is out of range."""

    code = "invalid_request"
    status = 422


class InvalidCursor(InvalidRequest):
    """A page cursor this service did not hand out (tampered, or with no UTC time)."""

    code = "invalid_cursor"


class TextEmpty(InvalidRequest):
    code = "text_empty"


class TextInvalid(InvalidRequest):
    """The text holds characters no voice can read and no database can store safely."""

    code = "text_invalid"


class TextTooLong(InvalidRequest):
    code = "text_too_long"


class TextUnspeakable(InvalidRequest):
    """The text has nothing the voice can pronounce (only punctuation or symbols)."""

    code = "text_unspeakable"


class TextLanguageUnsupported(InvalidRequest):
    """The text is in a language or script the voice does not speak; details: ``language``,
    ``script``, ``voice``, ``voice_languages`` and ``alternatives`` (voices that speak it)."""

    code = "text_language_unsupported"


class SpokenTextTooLong(InvalidRequest):
    """The text, once numbers and symbols are spelled out, is over ``api.max_spoken_chars``;
    details: ``chars`` (spoken), ``text_chars`` (as sent), ``limit``."""

    code = "spoken_text_too_long"


class AudioTooLong(InvalidRequest):
    """The job would make (refused at submit) or made (the job fails) more audio than
    ``jobs.max_audio_seconds``; details: ``seconds``, ``limit``, ``estimated``."""

    code = "audio_too_long"


class UnknownVoice(InvalidRequest):
    code = "unknown_voice"


class UnsupportedFormat(InvalidRequest):
    code = "unsupported_format"


class CallbackUrlRefused(InvalidRequest):
    """A ``callback_url`` that is malformed, names a host outside ``webhooks.allowed_hosts``,
    an address that is not public (SSRF), or comes from a tenant with no signing secret;
    ``reason`` says which (docs/webhooks.md)."""

    code = "callback_url_refused"


class VoiceDeleted(InvalidRequest):
    """The voice profile was deleted; it can no longer be used for new jobs."""

    code = "voice_deleted"


class VoiceAnalysisOutdated(InvalidRequest):
    """The profile's stored analysis predates this engine's; ``voices reanalyse`` renews it."""

    code = "voice_analysis_outdated"


class ConsentMissing(InvalidRequest):
    """A voice profile needs the speaker's consent statement."""

    code = "consent_missing"


class ReferenceInvalid(InvalidRequest):
    """Reference audio unfit for cloning; details carry the measured value and the limit."""

    code = "reference_invalid"


class ReferenceUnreadable(ReferenceInvalid):
    code = "reference_unreadable"


class ReferenceFormatUnsupported(ReferenceInvalid):
    code = "reference_format_unsupported"


class ReferenceSampleRateTooLow(ReferenceInvalid):
    code = "reference_sample_rate_too_low"


class ReferenceNotMono(ReferenceInvalid):
    code = "reference_not_mono"


class ReferenceTooShort(ReferenceInvalid):
    code = "reference_too_short"


class ReferenceTooLong(ReferenceInvalid):
    code = "reference_too_long"


class ReferenceNoSpeech(ReferenceInvalid):
    code = "reference_no_speech"


class ReferenceTooQuiet(ReferenceInvalid):
    code = "reference_too_quiet"


class ReferenceClipped(ReferenceInvalid):
    code = "reference_clipped"


class ReferenceTooNoisy(ReferenceInvalid):
    code = "reference_too_noisy"


class BodyTooLarge(SteadyVoiceError):
    """A body over its size limit; details: ``measured``, ``limit``, ``unit`` (bytes)."""

    code = "body_too_large"
    status = 413

    @classmethod
    def of_size(
        cls,
        what: str,
        measured: int | None,
        limit: int,
        *,
        received_all: bool = True,
        advice: str = "",
    ) -> Self:
        """``what`` measured (or, cut off while streaming in, more than ``measured``) bytes."""
        if measured is None:
            return cls(f"{what} has a Content-Length that is not a number", limit=limit)
        size = f"{measured} bytes" if received_all else f"more than {measured} bytes"
        return cls(
            f"{what} is {size}, over the limit of {limit} bytes{advice}",
            measured=measured,
            limit=limit,
            unit="bytes",
        )


class ReferenceTooLarge(BodyTooLarge):
    code = "reference_too_large"


class BatchTooLarge(BodyTooLarge):
    """A batch upload over ``batch.max_body_bytes``."""

    code = "batch_too_large"


class Unauthenticated(SteadyVoiceError):
    """No usable API key: missing, malformed, unknown or revoked. Answered with 401."""

    code = "auth_required"
    status = 401


class InvalidKey(Unauthenticated):
    code = "invalid_key"


class KeyRevoked(Unauthenticated):
    code = "key_revoked"


class SessionEnded(Unauthenticated):
    """The console's session cookie is missing, unknown, expired or signed out."""

    code = "session_ended"


class DuplicateAuthorization(SteadyVoiceError):
    """More than one ``Authorization`` header: which one counts would be a guess, so neither."""

    code = "duplicate_authorization"
    status = 400


class Forbidden(SteadyVoiceError):
    """The key is valid but its role does not allow this call."""

    code = "forbidden"
    status = 403


class CsrfRefused(Forbidden):
    """A console form or call without its session's CSRF token, or from another origin."""

    code = "csrf_refused"


class TooManyRequests(SteadyVoiceError):
    """A per-key limit was reached; retry after ``retry_after`` seconds (also a header)."""

    code = "rate_limited"
    status = 429


class TooManyInFlight(TooManyRequests):
    """The key already has its allowed number of jobs queued or running."""

    code = "too_many_jobs_in_flight"


class QuotaExceeded(SteadyVoiceError):
    """A tenant's quota is spent; details: ``quota``, ``tenant``, ``used``, ``limit``,
    ``resets_at`` (ISO 8601 UTC, or null: it does not reset by itself)."""

    code = "quota_exceeded"
    status = 429


class AudioQuotaExceeded(QuotaExceeded):
    """The tenant's audio seconds for the current UTC day are spent; retry after midnight UTC."""

    code = "audio_quota_exceeded"


class StorageQuotaExceeded(QuotaExceeded):
    """The tenant's stored audio is at its byte quota; retrying does not help."""

    code = "storage_quota_exceeded"
    status = 403


class TooManyFailedLogins(TooManyRequests):
    """The client address has had too many refused keys this minute; checked before any key."""

    code = "auth_rate_limited"


class NotFound(SteadyVoiceError):
    code = "not_found"
    status = 404


class JobNotFound(NotFound):
    code = "job_not_found"


class VoiceNotFound(NotFound):
    code = "voice_not_found"


class BatchNotFound(NotFound):
    code = "batch_not_found"


class Conflict(SteadyVoiceError):
    code = "conflict"
    status = 409


class JobNotCancelable(Conflict):
    code = "job_not_cancelable"


class BatchInvalid(InvalidRequest):
    """A batch with bad rows; nothing was created. ``errors``: row, column, code, message."""

    code = "batch_invalid"


class AudioNotReady(Conflict):
    code = "audio_not_ready"


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"


class AuditArchiveMismatch(Conflict):
    """``audit rotate``: the archive is sound but does not hold the rows the log holds."""

    code = "audit_archive_mismatch"


class RestoreTargetNotEmpty(Conflict):
    """``backup restore`` only fills an empty data dir, storage and database; details name
    what is already there (``found``)."""

    code = "restore_target_not_empty"


class BackupNotFound(NotFound):
    """No finished backup (a snapshot with its manifest) at the destination given."""

    code = "backup_not_found"


class BackupCorrupt(SteadyVoiceError):
    """A backup's manifest or database snapshot does not match its recorded SHA-256."""

    code = "backup_corrupt"
    status = 500


class BackupFailed(SteadyVoiceError):
    """A backup step could not run: ``pg_dump``/``pg_restore`` failed or is missing, or the
    destination could not be read or written."""

    code = "backup_failed"
    status = 500


class LastAdminKey(Conflict):
    """Revoking this key would leave no active admin key."""

    code = "last_admin_key"


class KeyNotFound(NotFound):
    code = "key_not_found"


class HoldNotFound(NotFound):
    code = "hold_not_found"


class OutputMissing(SteadyVoiceError):
    """The job record says there is audio but the file is gone or corrupt (run ``verify``)."""

    code = "output_missing"
    status = 410


class OutputPurged(SteadyVoiceError):
    """The job's audio was deleted by the retention policy; its record (and SHA-256) stays."""

    code = "output_purged"
    status = 410


class OutputPurging(Conflict):
    """A retention purge is deleting this audio right now: no hold can save it; retry in a
    moment (it is then ``output_purged``, or held if the delete failed)."""

    code = "output_purging"


class IllegalTransition(SteadyVoiceError):
    """A job state change that the state machine forbids (a bug or a lost race)."""

    code = "illegal_transition"
    status = 409


class Busy(SteadyVoiceError):
    """Too much of this work is in progress; retry after ``retry_after`` seconds."""

    code = "busy"
    status = 503


class VoiceChecksBusy(Busy):
    code = "voice_checks_busy"


class Overloaded(Busy):
    """Admission control: the queue cannot finish this job before its deadline (or is full)."""

    code = "overloaded"


class NoLiveWorker(Busy):
    """A synchronous speech call found no live worker to run its job; nothing was recorded."""

    code = "no_live_worker"


class ShuttingDown(Busy):
    """The server began to shut down before the call's audio was ready; the job goes on."""

    code = "shutting_down"


class StoreUnavailable(SteadyVoiceError):
    """The job store cannot be reached; nothing was recorded. Safe to retry."""

    code = "store_unavailable"
    status = 503


class EngineError(SteadyVoiceError):
    """Synthesis failed inside the engine; recorded on the job, never raised to a client."""

    code = "engine_error"
    status = 500


class EngineUnavailable(EngineError):
    code = "engine_unavailable"


class EngineOutOfMemory(EngineError):
    """The engine ran out of (GPU) memory, also after a retry in smaller pieces."""

    code = "engine_out_of_memory"


class EngineOutputInvalid(EngineError):
    """The engine returned audio that is not finite, or silence for non-empty text."""

    code = "engine_output_invalid"


class AuditArchiveInvalid(InvalidRequest):
    """An audit segment file that is damaged, incomplete or signed with another key."""

    code = "audit_archive_invalid"


class TranscriptRequired(InvalidRequest):
    """The engine clones from the reference recording and its transcript; this one has none."""

    code = "transcript_required"


class UnknownModel(InvalidRequest):
    """``model`` names no model this service serves (see ``GET /v1/models``)."""

    code = "unknown_model"


class SpeechTimeout(SteadyVoiceError):
    """The job did not finish within the wait of a synchronous call; it goes on running."""

    code = "speech_timeout"
    status = 504


class SpeechFailed(SteadyVoiceError):
    """The job behind a synchronous speech call ended without audio; details name its error."""

    code = "speech_failed"
    status = 502


class NoDatabase(SteadyVoiceError):
    """No steadyvoice database where the settings point. Commands that only read never create
    one: ``STEADYVOICE_DATA_DIR`` (or ``STEADYVOICE_DATABASE_URL``) must name the service's."""

    code = "no_database"
    status = 503


class SchemaNotCurrent(NoDatabase):
    """The database's schema is not this version's: older (``steadyvoice serve`` upgrades it)
    or newer (made by a later steadyvoice). Commands that only read never change it."""

    code = "schema_not_current"


class StorageError(SteadyVoiceError):
    """Writing audio to the server's disk failed (an I/O error, a permission); recorded on the
    job, whose worker goes on to the next one."""

    code = "storage_error"
    status = 500


class StorageFull(StorageError):
    """No space left (or the quota is spent) on the disk that holds the outputs."""

    code = "storage_full"
    status = 507


class StorageUnavailable(StorageError):
    """The object store (``storage.backend=s3``) did not answer, after the upload's retries;
    the job fails and readiness reports ``storage_unreachable``."""

    code = "storage_unavailable"
    status = 503
