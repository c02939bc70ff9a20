"""``GET /v1/audit`` (admin): the audit log, newest first, filtered."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from steadyvoice.api.deps import ServicesDep
from steadyvoice.api.policy import allow
from steadyvoice.api.schemas import Timestamp, error_responses
from steadyvoice.api.security_schemas import AuditOut, AuditPage
from steadyvoice.errors import InvalidRequest
from steadyvoice.security.audit import AuditQuery
from steadyvoice.security.principal import Role

router = APIRouter(prefix="/v1/audit", tags=["audit"])
ERRORS = error_responses(422)
Filter = Annotated[str | None, Query(max_length=128)]


@router.get("", response_model=AuditPage, responses=ERRORS, openapi_extra=allow(Role.ADMIN))
def read_audit(
    services: ServicesDep,
    key_id: Filter = None,
    tenant: Filter = None,
    action: Filter = None,
    object_id: Filter = None,
    outcome: Filter = None,
    since: Timestamp | None = None,
    until: Timestamp | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
) -> AuditPage:
    """Who did what, when, from where and with what outcome; follow ``next_cursor``."""
    for value, name in ((since, "since"), (until, "until")):
        if value is not None and value.tzinfo is None:
            raise InvalidRequest(f"{name} needs a timezone (e.g. Z)", field=name)
    texts = {"key_id": key_id, "tenant": tenant, "action": action, "object_id": object_id}
    for name, text in {**texts, "outcome": outcome}.items():
        if text is not None and not text.isprintable():
            raise InvalidRequest(f"{name} must be printable text", field=name)
    rows = services.audit.query(
        AuditQuery(
            key_id=key_id,
            tenant=tenant,
            action=action,
            object_id=object_id,
            outcome=outcome,
            since=since,
            until=until,
            before_id=int(cursor) if cursor else None,
            limit=limit,
        )
    )
    nxt = str(rows[-1].id) if len(rows) == limit else None
    return AuditPage(items=[AuditOut.of(r) for r in rows], next_cursor=nxt)
