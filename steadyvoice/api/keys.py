"""API key routes (admin): create, list, read, revoke; and ``/v1/me`` for any key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from steadyvoice.api.cursor import decode_cursor, encode_cursor
from steadyvoice.api.deps import CallerDep, ServicesDep, note_object
from steadyvoice.api.policy import allow
from steadyvoice.api.schemas import error_responses
from steadyvoice.api.security_schemas import CallerOut, KeyCreate, KeyCreated, KeyOut, KeyPage
from steadyvoice.security.keys import NewKey
from steadyvoice.security.principal import Role

router = APIRouter(prefix="/v1/keys", tags=["keys"])
me_router = APIRouter(tags=["keys"])
ERRORS = error_responses(404, 409, 422)


@router.post(
    "",
    status_code=201,
    response_model=KeyCreated,
    responses=ERRORS,
    openapi_extra=allow(Role.ADMIN, audit="key.create"),
)
def create_key(
    body: KeyCreate, services: ServicesDep, caller: CallerDep, request: Request, response: Response
) -> KeyCreated:
    """Make an API key for a tenant. The key is in this response only; it is stored hashed."""
    new = NewKey(body.role, body.tenant, body.name, body.rate_per_minute, body.max_in_flight)
    issued = services.keys.create(new, by=caller.key_id)
    note_object(request, issued.record.id)
    response.headers["Location"] = f"/v1/keys/{issued.record.id}"
    return KeyCreated(**KeyOut.of(issued.record).model_dump(), key=issued.token)


@router.get("", response_model=KeyPage, responses=ERRORS, openapi_extra=allow(Role.ADMIN))
def list_keys(
    services: ServicesDep,
    tenant: Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")] = None,
    include_revoked: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> KeyPage:
    """API keys, newest first, optionally of one tenant; revoked ones on request."""
    before = decode_cursor(cursor) if cursor else None
    keys = services.keys.list_keys(
        tenant=tenant, include_revoked=include_revoked, before=before, limit=limit
    )
    nxt = encode_cursor(keys[-1].created_at, keys[-1].id) if len(keys) == limit else None
    return KeyPage(items=[KeyOut.of(k) for k in keys], next_cursor=nxt)


@router.get("/{key_id}", response_model=KeyOut, responses=ERRORS, openapi_extra=allow(Role.ADMIN))
def get_key(key_id: str, services: ServicesDep) -> KeyOut:
    """One API key's record (never the key itself)."""
    return KeyOut.of(services.keys.get(key_id))


@router.delete(
    "/{key_id}",
    response_model=KeyOut,
    responses=ERRORS,
    openapi_extra=allow(Role.ADMIN, audit="key.revoke"),
)
def revoke_key(key_id: str, services: ServicesDep, caller: CallerDep) -> KeyOut:
    """Revoke a key at once, in every API process. The last active admin key cannot be."""
    return KeyOut.of(services.keys.revoke(key_id, by=caller.key_id))


@me_router.get(
    "/v1/me", response_model=CallerOut, responses=ERRORS, openapi_extra=allow(Role.VIEWER)
)
async def whoami(caller: CallerDep) -> CallerOut:
    """The key making this call: its id, tenant, role and limits."""
    # Async: it reads nothing, so it needs no thread (the key check had one already).
    return CallerOut.of(caller)
