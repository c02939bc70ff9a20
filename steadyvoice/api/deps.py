"""Typed access to what ``create_app`` built, for route handlers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from steadyvoice.api.conversions import Conversions
from steadyvoice.api.policy import call_state
from steadyvoice.engines.base import Engine
from steadyvoice.errors import Unauthenticated
from steadyvoice.jobs.dispatch import ProgressWatch
from steadyvoice.jobs.liveness import WorkerRegistry
from steadyvoice.jobs.store import JobStore
from steadyvoice.jobs.submit import JobService
from steadyvoice.security.audit import AuditLog
from steadyvoice.security.keys import KeyStore
from steadyvoice.security.principal import Principal
from steadyvoice.security.ratelimit import RateLimiter
from steadyvoice.settings import Settings
from steadyvoice.storage.backend import Storage
from steadyvoice.voices.profiles import VoiceService


@dataclass(frozen=True)
class Services:
    """Everything the routes use, built once per app."""

    settings: Settings
    store: JobStore
    engine: Engine
    jobs: JobService
    storage: Storage  # outputs: local or s3 (steadyvoice.storage.backend)
    workers: WorkerRegistry
    voices: VoiceService
    keys: KeyStore
    audit: AuditLog
    limiter: RateLimiter
    progress: ProgressWatch  # workers' rings for jobs that speech calls wait on
    conversions: Conversions  # downloads in another format: pool and cache


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def caller_of(request: Request) -> Principal:
    """The authenticated caller (the access middleware checked the key and the role)."""
    principal = call_state(request.scope).principal
    if principal is None:  # only reachable if a route escaped the policy: refuse, never open
        raise Unauthenticated("this route needs an API key")
    return principal


def note_object(request: Request, object_id: str) -> None:
    """Name the object a call created, for its audit row (path ids are taken as they are)."""
    call_state(request.scope).object_id = object_id


CallerDep = Annotated[Principal, Depends(caller_of)]
