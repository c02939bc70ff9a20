"""Turning a request into a queued job: validation that needs no model, then record + notify."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass

from steadyvoice.engines.base import DEFAULT_SEED, Engine
from steadyvoice.errors import (
    TextEmpty,
    TextInvalid,
    TextTooLong,
    UnknownVoice,
    UnsupportedFormat,
)
from steadyvoice.jobs.dispatch import Dispatcher
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.store import JobStore, NewJob
from steadyvoice.observability.logs import event
from steadyvoice.settings import Settings

log = logging.getLogger("steadyvoice.jobs")

FORMATS = ("wav",)
# C0 controls except tab, newline and carriage return; DEL; UTF-16 surrogates (unencodable).
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


@dataclass(frozen=True)
class JobRequest:
    """What a client asked for, before defaults are applied."""

    text: str
    voice: str | None = None
    seed: int | None = None
    speed: float = 1.0
    format: str = "wav"


class JobService:
    """Validates and records jobs; never runs an engine (only asks it for cheap facts)."""

    def __init__(
        self, settings: Settings, store: JobStore, engine: Engine, dispatcher: Dispatcher
    ) -> None:
        self._settings = settings
        self._store = store
        self._engine = engine
        self._dispatcher = dispatcher

    def submit(
        self,
        req: JobRequest,
        requester: str,
        request_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[Job, bool]:
        """Returns (job, created). A repeated idempotency key returns the first job."""
        new = self._validate(req, requester, request_id, idempotency_key)
        job, created = self._store.create(new)
        if created:
            event(
                log,
                "job.queued",
                job_id=job.id,
                voice=job.voice,
                text_chars=len(job.text),
                text_sha256=hashlib.sha256(job.text.encode()).hexdigest()[:16],
            )
            self._dispatcher.notify(job.id)
        return job, created

    def _validate(
        self,
        req: JobRequest,
        requester: str,
        request_id: str | None,
        idempotency_key: str | None,
    ) -> NewJob:
        text = req.text.strip()
        if not text:
            raise TextEmpty("text is empty")
        bad = _FORBIDDEN.search(text)
        if bad is not None:
            raise TextInvalid(
                f"text contains the control character U+{ord(bad.group()):04X}",
                position=bad.start(),
            )
        limit = self._settings.api.max_text_chars
        if len(text) > limit:
            raise TextTooLong(
                f"text has {len(text)} characters; the limit is {limit}",
                chars=len(text),
                limit=limit,
            )
        if req.format not in FORMATS:
            raise UnsupportedFormat(
                f"format {req.format!r} is not supported", supported=list(FORMATS)
            )
        voice = req.voice or self._engine.default_voice()
        voices = self._engine.voices()
        if voice not in voices:
            raise UnknownVoice(f"unknown voice {voice!r}", voice=voice, available=voices)
        seed = DEFAULT_SEED if req.seed is None else req.seed
        return NewJob(
            text=text,
            voice=voice,
            engine=self._engine.name,
            engine_version=self._engine.version(voice),
            params={"seed": seed, "speed": req.speed, "format": req.format},
            requester=requester,
            deadline_seconds=self._settings.jobs.deadline_seconds,
            request_id=request_id,
            idempotency_key=idempotency_key,
        )
