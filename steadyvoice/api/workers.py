"""``GET /v1/workers`` (admin): every worker of the fleet, local or remote, Celery or not."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from steadyvoice.api.deps import ServicesDep
from steadyvoice.api.policy import allow
from steadyvoice.jobs.fleet import members
from steadyvoice.security.principal import Role

router = APIRouter(prefix="/v1/workers", tags=["workers"])


class WorkerOut(BaseModel):
    """One worker process, from its liveness row (times are the database's clock)."""

    id: str
    host: str
    pid: int
    engine: str
    queues: list[str]  # the Celery queues it consumes; empty: it polls the store
    state: str  # loading, standby, ready, busy, stopping
    live: bool  # beat within jobs.worker_ready_seconds
    serving: bool  # live with its engine loaded: what /readyz counts
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_age_seconds: float
    current_job: str | None
    jobs_done: int
    recycles: int  # of its slot (serve) or its metrics port (standalone) before this process
    metrics_port: int | None  # where it serves its own /metrics (None: in the API's)


class WorkerList(BaseModel):
    """The fleet, by host; ``serving`` is what ``/readyz`` reports as ``workers``."""

    workers: list[WorkerOut]
    serving: int


@router.get("", response_model=WorkerList, openapi_extra=allow(Role.ADMIN))
def list_workers(services: ServicesDep) -> WorkerList:
    """Every registered worker: host, engine, queues, state, last heartbeat, jobs done,
    recycles. Silent ones stay listed (``live: false``) until the reaper prunes them."""
    found = members(services.store, services.settings.jobs.worker_ready_seconds)
    return WorkerList(
        workers=[WorkerOut(**asdict(m)) for m in found],
        serving=sum(1 for m in found if m.serving),
    )
