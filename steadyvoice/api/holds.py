"""Legal hold routes (admin): hold a job's audio or a tenant's against the retention purge."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from steadyvoice.api.deps import CallerDep, ServicesDep
from steadyvoice.api.policy import allow
from steadyvoice.api.schemas import error_responses
from steadyvoice.jobs.models import LegalHold
from steadyvoice.security.principal import Role
from steadyvoice.storage.holds import MAX_REASON_CHARS, HoldKind, Holds

router = APIRouter(tags=["holds"])
ERRORS = error_responses(404, 409, 410, 422)
TenantPath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]


class HoldIn(BaseModel):
    """Why the audio must be kept (a case number, a request)."""

    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS)


class HoldOut(BaseModel):
    """A legal hold: the retention purge skips what it covers until it is lifted."""

    kind: HoldKind
    subject: str = Field(description="The job id or the tenant held.")
    reason: str
    placed_by: str = Field(description="The API key id (or `cli:user`) that placed it.")
    placed_at: datetime

    @classmethod
    def of(cls, hold: LegalHold) -> HoldOut:
        return cls(
            kind=HoldKind(hold.kind),
            subject=hold.subject,
            reason=hold.reason,
            placed_by=hold.placed_by,
            placed_at=hold.placed_at,
        )


class HoldList(BaseModel):
    items: list[HoldOut]


def _place(
    services: ServicesDep, caller: CallerDep, kind: HoldKind, subject: str, body: HoldIn
) -> HoldOut:
    hold = Holds(services.store).place(kind, subject, body.reason, by=caller.key_id)
    return HoldOut.of(hold)


@router.post(
    "/v1/jobs/{job_id}/hold",
    response_model=HoldOut,
    responses=ERRORS,
    openapi_extra=allow(Role.ADMIN, audit="hold.place"),
)
def hold_job(job_id: str, body: HoldIn, services: ServicesDep, caller: CallerDep) -> HoldOut:
    """Put a legal hold on a job's audio: the retention purge keeps it until the hold is
    lifted. Placing a hold that exists returns it unchanged. A purged job answers 410."""
    return _place(services, caller, HoldKind.JOB, job_id, body)


@router.delete(
    "/v1/jobs/{job_id}/hold",
    response_model=HoldOut,
    responses=ERRORS,
    openapi_extra=allow(Role.ADMIN, audit="hold.lift"),
)
def lift_job_hold(job_id: str, services: ServicesDep) -> HoldOut:
    """Lift a job's legal hold; its audio is purged in the next round if it is past retention."""
    return HoldOut.of(Holds(services.store).lift(HoldKind.JOB, job_id))


@router.post(
    "/v1/tenants/{tenant}/hold",
    response_model=HoldOut,
    responses=ERRORS,
    openapi_extra=allow(Role.ADMIN, audit="hold.place"),
)
def hold_tenant(
    tenant: TenantPath, body: HoldIn, services: ServicesDep, caller: CallerDep
) -> HoldOut:
    """Put a legal hold on all of a tenant's audio, present and future."""
    return _place(services, caller, HoldKind.TENANT, tenant, body)


@router.delete(
    "/v1/tenants/{tenant}/hold",
    response_model=HoldOut,
    responses=ERRORS,
    openapi_extra=allow(Role.ADMIN, audit="hold.lift"),
)
def lift_tenant_hold(tenant: TenantPath, services: ServicesDep) -> HoldOut:
    """Lift a tenant's legal hold (holds on single jobs stay)."""
    return HoldOut.of(Holds(services.store).lift(HoldKind.TENANT, tenant))


@router.get("/v1/holds", response_model=HoldList, responses=ERRORS, openapi_extra=allow(Role.ADMIN))
def list_holds(services: ServicesDep, kind: HoldKind | None = None) -> HoldList:
    """Every legal hold, oldest first."""
    return HoldList(items=[HoldOut.of(h) for h in Holds(services.store).list(kind)])
