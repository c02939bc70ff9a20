"""Typed access to what ``create_app`` built, for route handlers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from steadyvoice.api.conversions import Conversions
from steadyvoice.api.policy import call_state
from steadyvoice.dispatch.broker_check import BrokerCheck
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
    broker: BrokerCheck | None = None  # dispatch.backend=celery: readiness's broker ping


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def services_of(request: Request) -> Services:
    """:func:`get_services` as a dependency. Dependencies that do no I/O are ``async``: FastAPI
    runs a plain ``def`` one in a thread of the default pool, a hop through a busy pool (and
    the GIL) on every request, for nothing."""
    return get_services(request)


ServicesDep = Annotated[Services, Depends(services_of)]


async def caller_of(request: Request) -> Principal:
    """The authenticated caller (the access middleware checked the key and the role)."""
    principal = call_state(request.scope).principal
    if principal is None:  # only reachable if a route escaped the policy: refuse, never open
        raise Unauthenticated("this route needs an API key")
    return principal


def note_object(request: Request, object_id: str) -> None:
    """Name the object a call created, for its audit row (path ids are taken as they are)."""
    call_state(request.scope).object_id = object_id


CallerDep = Annotated[Principal, Depends(caller_of)]
