"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from steadyvoice.api.deps import Services, ServicesDep
from steadyvoice.api.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The API process is alive. Says nothing about workers or the database."""
    return Health(status="ok")


def readiness(services: Services) -> Readiness:
    """Ready to take work: database reachable, an engine loaded in a live worker, the object
    store reachable (``storage.backend=s3``), disk free. Degraded, yet taking work: the Celery
    broker unreachable (jobs wait in the outbox; steadyvoice.dispatch.broker_check)."""
    reasons: list[str] = []
    workers = 0
    try:
        services.store.ping()
        workers = services.workers.serving(services.settings.jobs.worker_ready_seconds)
        if workers == 0:
            reasons.append("no_live_worker: no worker has its engine loaded")
    except Exception as exc:  # noqa: BLE001 - any database failure means not ready
        reasons.append(f"database_unreachable: {type(exc).__name__}")
    unreachable = services.storage.unreachable()  # cached: at most one HEAD per interval
    if unreachable is not None:
        reasons.append(f"storage_unreachable: {unreachable}")
    free_mb = services.storage.free_bytes() // (1024 * 1024)
    need = services.settings.storage.min_free_disk_mb
    if free_mb < need:
        reasons.append(f"low_disk: {free_mb} MB free, {need} MB required")
    degraded = []
    broker = services.broker.unreachable() if services.broker is not None else None  # cached
    if broker is not None:
        degraded.append(f"broker_unreachable: {broker}")
    return Readiness(
        status="not_ready" if reasons else "degraded" if degraded else "ready",
        reasons=reasons,
        degraded=degraded,
        workers=workers,
        free_disk_mb=free_mb,
    )


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
def readyz(services: ServicesDep) -> JSONResponse:
    """Ready to take work: database reachable, an engine loaded in a live worker, disk free.
    200 also while ``degraded`` (the Celery broker is away: jobs are kept and sent later)."""
    body = readiness(services)
    return JSONResponse(body.model_dump(), status_code=503 if body.reasons else 200)
