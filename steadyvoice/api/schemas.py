"""Request and response bodies of the HTTP API."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from steadyvoice.audio.formats import CONTENT_TYPES
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.submit import JobRequest
from steadyvoice.settings import AudioFormat
from steadyvoice.voices.models import Voice

_RFC3339_START = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _rfc3339_text(value: object) -> object:
    # Pydantic alone would also take "0.5" or "1700000000" as Unix seconds; the schema says
    # format date-time, so a number is refused rather than read as a time in 1970.
    if isinstance(value, str) and not _RFC3339_START.match(value):
        raise ValueError("must be an RFC 3339 date-time, e.g. 2026-01-31T12:00:00Z")
    return value


def _within_utc_range(value: datetime) -> datetime:
    # The store compares in UTC: 0001-01-01T00:00+00:01 has no UTC time (OverflowError).
    if value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("is out of range once converted to UTC") from None
    return value


Timestamp = Annotated[datetime, BeforeValidator(_rfc3339_text), AfterValidator(_within_utc_range)]
"""A date-time query parameter: RFC 3339 text only."""


class JobCreate(BaseModel):
    """A text-to-speech job. Unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="What to say.", max_length=1_000_000)
    voice: str | None = Field(None, description="Voice name; the engine's default if omitted.")
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Defaults to 42.")
    speed: float = Field(1.0, ge=0.25, le=4.0)
    format: AudioFormat = Field(
        "wav", description="How the audio is stored and served (pcm: raw s16le mono)."
    )
    normalize: bool | None = Field(
        None,
        description="Spell out numbers, dates, currency and times in the voice's language before "
        "speaking (the spoken text is recorded on the job). Default: the service's setting.",
    )
    instructions: str | None = Field(
        None,
        max_length=64,
        description="How to speak, for engines that can (cosyvoice: a dialect, emotion or pace "
        "key such as 'cantonese', 'happy', 'slow'); other engines refuse it.",
    )
    cross_lingual: bool = Field(
        False,
        description="With a voice profile: keep the speaker's timbre for text in another "
        "language than the reference (cosyvoice); other engines refuse it.",
    )
    callback_url: str | None = Field(
        None,
        max_length=2048,
        description="Called (POST, signed) when the job finishes; its host must be in "
        "`webhooks.allowed_hosts`. See docs/webhooks.md.",
    )

    def job_request(self) -> JobRequest:
        """What the job path checks and runs: the same for the API and ``steadyvoice synth``."""
        return JobRequest(**self.model_dump())


class JobError(BaseModel):
    code: str
    message: str | None


class JobOutput(BaseModel):
    name: str
    sample_rate: int | None
    duration_seconds: float | None
    sha256: str | None
    size_bytes: int | None
    url: str
    purged_at: datetime | None = Field(
        None,
        description="When the retention policy deleted the audio (downloads then answer 410 "
        "`output_purged`); the SHA-256 stays.",
    )


class JobOut(BaseModel):
    """A job as the record of truth holds it."""

    id: str
    status: str
    text: str
    spoken_text: str | None = Field(
        description="What the engine was given, if normalization changed the text."
    )
    voice: str
    engine: str
    engine_version: str | None
    params: dict[str, Any]
    requester: str = Field(description="The id of the API key that asked for the job.")
    tenant: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    deadline_at: datetime
    attempts: int
    worker_id: str | None
    lane: str = Field(
        "interactive", description="Scheduling lane: interactive, or batch for a batch's items."
    )
    batch_id: str | None = None
    callback_url: str | None = None
    webhook_state: str | None = Field(
        None, description="The callback: pending, delivered or failed (None: no callback_url)."
    )
    error: JobError | None
    output: JobOutput | None

    @classmethod
    def of(cls, job: Job) -> JobOut:
        error = JobError(code=job.error_code, message=job.error_message) if job.error_code else None
        output = None
        if job.sha256 is not None:
            output = JobOutput(
                name=job.output_name.rsplit("/", 1)[-1],
                sample_rate=job.sample_rate,
                duration_seconds=job.duration_seconds,
                sha256=job.sha256,
                size_bytes=job.size_bytes,
                url=f"/v1/jobs/{job.id}/audio",
                purged_at=job.purged_at,
            )
        columns = {name: getattr(job, name) for name in _COLUMN_FIELDS}
        return cls(**columns, error=error, output=output)


_COLUMN_FIELDS = tuple(name for name in JobOut.model_fields if name not in ("error", "output"))


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


class ErrorBody(BaseModel):
    code: str
    message: str

    model_config = ConfigDict(extra="allow")


class ErrorResponse(BaseModel):
    """Every error: a stable machine code, a human message, and structured details."""

    error: ErrorBody


# Every keyed route can answer these: two Authorization headers, no or bad key, role too low,
# over a per-key limit (or the address over its refused keys).
ACCESS_ERRORS = (400, 401, 403, 429)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a keyed route: the access errors plus ``statuses``."""
    return {code: {"model": ErrorResponse} for code in sorted({*ACCESS_ERRORS, *statuses})}


AUDIO_CONTENT = {
    media_type: {"schema": {"type": "string", "format": "binary"}}
    for media_type in dict.fromkeys(CONTENT_TYPES.values())
}
"""OpenAPI ``content`` of a route that answers with audio, in any of the formats."""


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    """``/readyz``: ``reasons`` make it ``not_ready`` (503); ``degraded`` names what is away
    while it still takes work (200, ``status`` ``degraded``), such as ``broker_unreachable``."""

    status: Literal["ready", "degraded", "not_ready"]
    reasons: list[str]
    degraded: list[str] = []
    workers: int
    free_disk_mb: int | None


class ReferenceOut(BaseModel):
    """The stored reference recording, as uploaded, with what validation measured."""

    format: str
    sample_rate: int
    channels: int
    file_seconds: float
    speech_seconds: float
    sha256: str
    size_bytes: int
    measurements: dict[str, float]
    url: str


class VoiceOut(BaseModel):
    """A voice profile: who made it, when, with whose consent, from which recording."""

    id: str
    name: str
    status: Literal["active", "deleted"]
    created_by: str
    tenant: str
    created_at: datetime
    consent: str
    transcript: str | None
    language: str | None = Field(
        description="The language of the recording (declared at upload or detected from the "
        "transcript; null if neither said). The profile speaks its base voice's languages: "
        "``GET /v1/audio/voices``."
    )
    reference: ReferenceOut
    analysis_version: str
    deleted_at: datetime | None
    deleted_by: str | None

    @classmethod
    def of(cls, voice: Voice) -> VoiceOut:
        return cls(
            id=voice.id,
            name=voice.name,
            status="deleted" if voice.deleted_at is not None else "active",
            created_by=voice.created_by,
            tenant=voice.tenant,
            created_at=voice.created_at,
            consent=voice.consent,
            transcript=voice.transcript,
            language=voice.language,
            reference=ReferenceOut(
                format=voice.reference_format,
                sample_rate=voice.sample_rate,
                channels=voice.channels,
                file_seconds=voice.file_seconds,
                speech_seconds=voice.speech_seconds,
                sha256=voice.reference_sha256,
                size_bytes=voice.reference_bytes,
                measurements=voice.measurements,
                url=f"/v1/voices/{voice.id}/reference",
            ),
            analysis_version=voice.analysis_version,
            deleted_at=voice.deleted_at,
            deleted_by=voice.deleted_by,
        )


class VoicePage(BaseModel):
    items: list[VoiceOut]
    next_cursor: str | None
