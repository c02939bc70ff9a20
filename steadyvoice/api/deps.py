"""Typed access to what ``create_app`` built, for route handlers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from steadyvoice.engines.base import Engine
from steadyvoice.jobs.liveness import WorkerRegistry
from steadyvoice.jobs.store import JobStore
from steadyvoice.jobs.submit import JobService
from steadyvoice.settings import Settings
from steadyvoice.storage.local import LocalStorage
from steadyvoice.voices.profiles import VoiceService


@dataclass(frozen=True)
class Services:
    """Everything the routes use, built once per app."""

    settings: Settings
    store: JobStore
    engine: Engine
    jobs: JobService
    storage: LocalStorage
    workers: WorkerRegistry
    voices: VoiceService


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]

ANONYMOUS = "anonymous"


def requester_of(_: Request) -> str:
    """Who is asking. Until API keys exist, every caller is ``anonymous``."""
    return ANONYMOUS


RequesterDep = Annotated[str, Depends(requester_of)]
