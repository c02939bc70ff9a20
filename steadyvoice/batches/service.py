"""Accepting a batch: every row through the single-job checks, then one all-or-nothing insert.

Each item becomes a job exactly as ``POST /v1/jobs`` would record it (the same
:class:`~steadyvoice.jobs.submit.RequestChecks`: text, normalization, language, voice, format,
the engine's limits; the same params, so the same seed gives the same bytes), in the ``batch``
lane with its batch id and row. Nothing is recorded unless every row passes.
"""

from __future__ import annotations

import dataclasses
import logging

from steadyvoice.batches.models import Batch
from steadyvoice.batches.rows import Parsed, Row
from steadyvoice.batches.store import BatchStore
from steadyvoice.engines.base import Engine
from steadyvoice.errors import BatchInvalid, SteadyVoiceError
from steadyvoice.jobs.dispatch import Dispatcher
from steadyvoice.jobs.quotas import Quotas
from steadyvoice.jobs.runner import Profiles
from steadyvoice.jobs.store import JobStore, NewJob
from steadyvoice.jobs.submit import JobRequest, RequestChecks
from steadyvoice.observability.logs import event
from steadyvoice.security.principal import Principal
from steadyvoice.settings import Settings
from steadyvoice.webhooks.urls import validate_callback_url

log = logging.getLogger("steadyvoice.batches")

# Which column a check's error code is about, for the row-level report.
_COLUMN_OF = {
    "unknown_voice": "voice",
    "voice_deleted": "voice",
    "voice_analysis_outdated": "voice",
    "unsupported_format": "format",
}


class BatchService:
    """Validates and records batches; like ``JobService``, it never runs an engine."""

    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        engine: Engine,
        dispatcher: Dispatcher,
        profiles: Profiles | None = None,
    ) -> None:
        self.settings = settings
        self.store = BatchStore(store)
        self._dispatcher = dispatcher
        self._checks = RequestChecks(settings, engine, profiles)
        self._quotas = Quotas(settings.quotas, store)

    def submit(
        self,
        parsed: Parsed,
        caller: Principal,
        request_id: str | None = None,
        idempotency_key: str | None = None,
        callback_url: str | None = None,
    ) -> tuple[Batch, bool]:
        """Returns (batch, created). A repeated ``Idempotency-Key`` returns the first batch
        (``idempotency_key_reused`` if its items differ), before any row is checked again.
        The rows that parsed are checked even when others did not: one answer names all."""
        if callback_url is not None:  # callback_url_refused, before anything else
            callback_url = validate_callback_url(callback_url, self.settings, caller.tenant)
        request_hash = parsed.request_hash()
        if idempotency_key is not None and not parsed.errors:
            first = self.store.find_repeat(caller.key_id, idempotency_key, request_hash)
            if first is not None:
                return first, False
        jobs = self._validated(parsed, caller, request_id)
        estimated = sum(j.estimated_seconds or 0.0 for j in jobs)
        self._quotas.check(caller.tenant, estimated)
        batch, created = self.store.create(
            parsed, jobs, caller, request_id, idempotency_key, request_hash, callback_url
        )
        if created:
            event(log, "batch.queued", batch_id=batch.id, items=batch.item_count)
            self._dispatcher.notify(batch.id)
        return batch, created

    def retry(self, batch: Batch) -> list[str]:
        """A new attempt for each failed item (the same params and seed); the new jobs' ids."""
        made = self.store.retry(batch, self.settings.batch.deadline_seconds)
        if made:
            self._dispatcher.notify(made[0])
        return made

    def _validated(self, parsed: Parsed, caller: Principal, request_id: str | None) -> list[NewJob]:
        deadline = self.settings.batch.deadline_seconds
        jobs: list[NewJob] = []
        for row in parsed.rows:
            try:
                new = self._checks.validate(_request(row), caller, request_id)
            except SteadyVoiceError as exc:
                column = _COLUMN_OF.get(exc.code, "text" if "text" in exc.code else None)
                parsed.error(row.number, column, exc.code, exc.message)
                continue
            jobs.append(dataclasses.replace(new, deadline_seconds=deadline))
        if parsed.errors:
            raise _invalid(parsed)
        return jobs


def _request(row: Row) -> JobRequest:
    return JobRequest(
        text=row.text, voice=row.voice, seed=row.seed, speed=row.speed, format=row.format
    )


def _invalid(parsed: Parsed) -> BatchInvalid:
    return BatchInvalid(
        f"the batch has {parsed.error_count} problem(s); nothing was created",
        errors=[e.to_dict() for e in sorted(parsed.errors, key=lambda e: e.row)],
        error_count=parsed.error_count,
    )
