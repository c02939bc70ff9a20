"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from steadyvoice.jobs.models import Job
from steadyvoice.voices.models import Voice


class JobCreate(BaseModel):
    """A text-to-speech job. Unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="What to say.", max_length=1_000_000)
    voice: str | None = Field(None, description="Voice name; the engine's default if omitted.")
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Defaults to 42.")
    speed: float = Field(1.0, ge=0.25, le=4.0)
    format: Literal["wav"] = "wav"


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


class JobOut(BaseModel):
    """A job as the record of truth holds it."""

    id: str
    status: str
    text: str
    voice: str
    engine: str
    engine_version: str | None
    params: dict[str, Any]
    requester: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    deadline_at: datetime
    attempts: int
    worker_id: str | None
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


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    reasons: list[str]
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
    created_at: datetime
    consent: str
    transcript: str | None
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
            created_at=voice.created_at,
            consent=voice.consent,
            transcript=voice.transcript,
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
