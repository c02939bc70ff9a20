"""Turning a request into a queued job: validation that needs no model, then record + notify."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from steadyvoice.audio.formats import FORMATS, encoder_tag
from steadyvoice.engines.base import (
    DEFAULT_SEED,
    Engine,
    SynthesisRequest,
    VoiceTarget,
    check_request,
)
from steadyvoice.errors import (
    Busy,
    QuotaExceeded,
    TextEmpty,
    TextTooLong,
    UnknownVoice,
    UnsupportedFormat,
)
from steadyvoice.jobs.admission import Admission
from steadyvoice.jobs.caps import JobCaps
from steadyvoice.jobs.dispatch import Dispatcher
from steadyvoice.jobs.models import Job
from steadyvoice.jobs.quotas import Quotas
from steadyvoice.jobs.runner import Profiles
from steadyvoice.jobs.store import JobStore, NewJob
from steadyvoice.languages.refusal import refuse_unspoken
from steadyvoice.languages.voices import voice_languages
from steadyvoice.observability.logs import event
from steadyvoice.security.principal import Principal
from steadyvoice.settings import Settings
from steadyvoice.text import NORMALIZATION_VERSION, normalize, normalize_english, text_language
from steadyvoice.textrules import refuse_control_characters, refuse_unspeakable
from steadyvoice.voices.profiles import is_profile_id
from steadyvoice.webhooks.urls import validate_callback_url

log = logging.getLogger("steadyvoice.jobs")


@dataclass(frozen=True)
class JobRequest:
    """What a client asked for, before defaults are applied."""

    text: str
    voice: str | None = None
    seed: int | None = None
    speed: float = 1.0
    format: str = "wav"
    instructions: str | None = None
    cross_lingual: bool = False
    stream: bool = False
    normalize: bool | None = None  # None: the service's ``speech.normalize`` setting
    output_rate: int | None = None  # resample the output to this rate (None: the engine's)
    callback_url: str | None = None  # called when the job finishes (steadyvoice.webhooks)


class JobService:
    """Validates and records jobs; never runs an engine (only asks it for cheap facts)."""

    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        engine: Engine,
        dispatcher: Dispatcher,
        profiles: Profiles | None = None,
    ) -> None:
        self._store = store
        self._dispatcher = dispatcher
        self._checks = RequestChecks(settings, engine, profiles)
        self._admission = Admission(settings, store)
        self._quotas = Quotas(settings.quotas, store)

    def close(self) -> None:
        """Write what is still buffered (refusal counts); call at API shutdown."""
        self._admission.refusals.close()

    def submit(
        self,
        req: JobRequest,
        caller: Principal,
        request_id: str | None = None,
        idempotency_key: str | None = None,
        precondition: Callable[[], None] | None = None,
    ) -> tuple[Job, bool]:
        """Returns (job, created). A repeated idempotency key returns the first job.

        The job belongs to the caller's key and tenant; a voice profile must be visible to the
        caller. Tenant quotas, admission control and the key's in-flight quota apply only to new
        work: a repeat of an accepted job is always answered, however busy the queue is, even
        one that races its original (refused as new work, it looks the key up again).
        ``precondition`` (a caller's own check, e.g. that a worker is live) also runs for new
        work only, once the request is valid; it raises to refuse.
        """
        new = self._checks.validate(req, caller, request_id, idempotency_key)
        first = self._store.find_repeat(new)
        if first is not None:
            return first, False
        try:
            if precondition is not None:
                precondition()
            self._quotas.check(caller.tenant, new.estimated_seconds)
            self._admission.admit(len(new.text))
        except (Busy, QuotaExceeded):
            # Refused as new work, perhaps for the very job a racing twin of this request
            # recorded meanwhile: a repeat is answered with it, however busy the service is.
            first = self._store.find_repeat(new)
            if first is None:
                raise
            return first, False
        job, created = self._store.create(new, caller.max_in_flight)
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


class RequestChecks:
    """Everything a job request must pass before it is recorded, without a store: the text,
    its normalization, the format, the voice (or voice profile) and the engine's own limits.
    ``steadyvoice synth`` runs the same checks, so it speaks exactly what a job would."""

    def __init__(self, settings: Settings, engine: Engine, profiles: Profiles | None) -> None:
        self._settings = settings
        self._engine = engine
        self._profiles = profiles
        self._caps = JobCaps(settings)

    def validate(
        self,
        req: JobRequest,
        caller: Principal,
        request_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> NewJob:
        """The job ``req`` describes, with defaults applied; raises the request's error."""
        text = self._checked_text(req.text)
        if req.format not in FORMATS:
            raise UnsupportedFormat(
                f"format {req.format!r} is not supported", supported=list(FORMATS)
            )
        voice = req.voice or self._engine.default_voice()
        seed = DEFAULT_SEED if req.seed is None else req.seed
        params: dict[str, Any] = {"seed": seed, "speed": req.speed, "format": req.format}
        if req.stream:
            params["stream"] = True
        if req.output_rate is not None:
            params["output_rate"] = req.output_rate
        version, target = self._voice_params(voice, params, caller.scope)
        languages = voice_languages(self._engine, voice)
        refuse_unspoken(text, languages, self._engine, voice)  # text_language_unsupported
        spoken, normalization = self._spoken(text, req.normalize, languages)
        self._caps.check_spoken(spoken, text)
        if normalization is not None:
            params["text_normalization"] = normalization
        version += encoder_tag(req.format)
        # Engine-specific modes are recorded only when asked for, so older jobs' params and
        # request hashes stay as they were.
        if req.instructions is not None:
            params["instructions"] = req.instructions
        if req.cross_lingual:
            params["cross_lingual"] = True
        request = SynthesisRequest(
            text=spoken,
            voice=str(params.get("base_voice", voice)),
            seed=seed,
            speed=req.speed,
            target=target,
            instructions=req.instructions,
            cross_lingual=req.cross_lingual,
        )
        check_request(self._engine, request)
        estimated = self._caps.estimate(self._engine, request)
        callback = req.callback_url
        if callback is not None:
            callback = validate_callback_url(callback, self._settings, caller.tenant)
        return NewJob(
            text=text,
            voice=voice,
            engine=self._engine.name,
            engine_version=version,
            params=params,
            requester=caller.key_id,
            deadline_seconds=self._settings.jobs.deadline_seconds,
            request_id=request_id,
            idempotency_key=idempotency_key,
            tenant=caller.tenant,
            spoken_text=spoken if spoken != text else None,
            estimated_seconds=estimated,
            callback_url=callback,
        )

    def _spoken(
        self, text: str, asked: bool | None, languages: tuple[str, ...]
    ) -> tuple[str, str | None]:
        """The text the engine will speak, and the normalizer's version (None: not run).

        ``auto`` normalizes by the language of the voice (for a voice profile, of the voice
        that speaks it; ``none`` where that language has no normalizer), and leaves cosyvoice
        alone, which normalizes text itself in the languages it speaks. ``en`` forces English.
        A request's ``normalize`` turns it on (by language, or English under ``en``) or off.
        """
        mode = self._settings.speech.normalize
        if asked is not None:
            mode = ("en" if mode == "en" else "auto") if asked else "none"
        elif mode == "auto" and self._engine.name == "cosyvoice":
            mode = "none"
        if mode == "none":
            return text, None
        if mode == "en":
            return normalize_english(text), NORMALIZATION_VERSION
        return normalize(text, text_language(languages, text))

    def _checked_text(self, raw: str) -> str:
        text = raw.strip()
        if not text:
            raise TextEmpty("text is empty")
        refuse_control_characters(text)
        refuse_unspeakable(text)
        limit = self._settings.api.max_text_chars
        if len(text) > limit:
            raise TextTooLong(
                f"text has {len(text)} characters; the limit is {limit}",
                chars=len(text),
                limit=limit,
            )
        return text

    def _voice_params(
        self, voice: str, params: dict[str, Any], scope: str | None
    ) -> tuple[str, VoiceTarget | None]:
        """Check the voice, record what it resolves to in ``params``; return the engine version
        and the voice profile's target, if the voice is a profile.

        A voice profile is spoken by the engine's default voice adapted toward the profile; the
        job records the profile id, its reference checksum and the analysis version.
        """
        if self._profiles is not None and is_profile_id(voice):
            target = self._profiles.target_for(voice, scope)
            self._engine.check_target(target)
            base = self._engine.default_voice()
            params["base_voice"] = base
            params["voice_profile"] = {
                "id": target.voice_id,
                "reference_sha256": target.reference_sha256,
                "analysis_version": target.analysis_version,
            }
            return self._engine.version(base, adapted=True), target
        voices = self._engine.voices()
        if voice not in voices:
            raise self._unknown_voice(voice, voices, scope)
        return self._engine.version(voice), None

    def _unknown_voice(self, voice: str, voices: list[str], scope: str | None) -> UnknownVoice:
        """``unknown_voice``; when profiles of the caller's tenant bear that name, it names
        their ids (a profile is used by its id: names are labels and need not be unique)."""
        named = self._profiles.ids_named(voice, scope) if self._profiles is not None else []
        if not named:
            return UnknownVoice(f"unknown voice {voice!r}", voice=voice, available=voices)
        hint = (
            f"the voice profile named {voice!r} is {named[0]}: use that id"
            if len(named) == 1
            else f"the voice profiles named {voice!r} are {', '.join(named)}: use one of these ids"
        )
        return UnknownVoice(
            f"unknown voice {voice!r}; {hint}", voice=voice, available=voices, profiles=named
        )
