"""Request and response bodies of the key, audit and caller routes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from steadyvoice.security.models import ApiKey, AuditEvent
from steadyvoice.security.principal import Principal, Role


class KeyCreate(BaseModel):
    """A new API key. Limits default to the service settings when omitted."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    tenant: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$",
        description="Lower-case letters, digits, '.', '_' and '-'; every lookup is scoped to it.",
    )
    name: str = Field("", max_length=200, description="A label for people.")
    rate_per_minute: int | None = Field(None, ge=1, le=1_000_000)
    max_in_flight: int | None = Field(None, ge=1, le=1_000_000)


class KeyOut(BaseModel):
    """An API key's record. The key itself is never shown again after creation."""

    id: str
    prefix: str = Field(description="The key's visible start: sv_<12 hex>.")
    name: str
    role: Role
    tenant: str
    rate_per_minute: int | None
    max_in_flight: int | None
    status: str = Field(description="active or revoked")
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_by: str | None

    @classmethod
    def of(cls, key: ApiKey) -> KeyOut:
        return cls(
            id=key.id,
            prefix=key.prefix,
            name=key.name,
            role=Role(key.role),
            tenant=key.tenant,
            rate_per_minute=key.rate_per_minute,
            max_in_flight=key.max_in_flight,
            status="revoked" if key.revoked_at is not None else "active",
            created_at=key.created_at,
            created_by=key.created_by,
            revoked_at=key.revoked_at,
            revoked_by=key.revoked_by,
        )


class KeyCreated(KeyOut):
    key: str = Field(description="The API key. Shown only in this response: store it now.")


class KeyPage(BaseModel):
    items: list[KeyOut]
    next_cursor: str | None


class AuditOut(BaseModel):
    """One audit log row: who did what to which object, with what outcome."""

    id: int
    at: datetime
    key_id: str | None
    tenant: str | None
    role: str | None
    action: str
    object_id: str | None
    outcome: str = Field(description="ok, or the error code the call was answered with")
    status: int
    method: str
    route: str
    client: str | None
    request_id: str | None
    count: int = Field(
        1,
        description="calls this row stands for: 1, or, for refusals of callers without a valid "
        "key, the repeats of one address, outcome and minute folded into one row",
    )

    @classmethod
    def of(cls, row: AuditEvent) -> AuditOut:
        return cls.model_validate(row, from_attributes=True)


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_cursor: str | None


class CallerOut(BaseModel):
    """The key making this call, and the limits that apply to it."""

    key_id: str
    tenant: str
    role: Role
    rate_per_minute: int
    max_in_flight: int

    @classmethod
    def of(cls, principal: Principal) -> CallerOut:
        return cls(
            key_id=principal.key_id,
            tenant=principal.tenant,
            role=principal.role,
            rate_per_minute=principal.rate_per_minute,
            max_in_flight=principal.max_in_flight,
        )
