"""Admin pages: API keys (create, shown once; revoke) and the audit log with filters.

Admin keys only, as ``/v1/keys`` and ``/v1/audit`` are, with the same audit actions. A new
key is shown in the answer to the form that made it and nowhere else: never in a URL (the
answer is a page, not a redirect), never stored, and the page is ``no-store``.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from steadyvoice.api.deps import ServicesDep, note_object
from steadyvoice.api.policy import allow, call_state
from steadyvoice.console.form_values import day, day_end, day_start, whole_number
from steadyvoice.console.routing import console_router
from steadyvoice.console.templates import render
from steadyvoice.console.visit import PREFIX, VisitDep
from steadyvoice.errors import InvalidRequest
from steadyvoice.security.audit import AuditQuery
from steadyvoice.security.keys import IssuedKey, NewKey
from steadyvoice.security.principal import Role

router = console_router()
ADMIN = f"{PREFIX}/admin"
AUDIT = f"{ADMIN}/audit"
KEYS_SHOWN = 200
AUDIT_PAGE = 50
AUDIT_FIELDS = ("key_id", "tenant", "action", "object_id", "outcome", "since", "until")
ROLES = [r.value for r in Role]


def _keys_page(
    request: Request,
    services: ServicesDep,
    *,
    issued: IssuedKey | None = None,
    error: InvalidRequest | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    revoked = request.query_params.get("revoked") == "1"
    keys = services.keys.list_keys(include_revoked=revoked, limit=KEYS_SHOWN)
    response = render(
        request,
        "admin_keys.html",
        status=422 if error else 200,
        keys=keys,
        issued=issued,
        error=error,
        form=form or {},
        roles=ROLES,
        show_revoked=revoked,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get(ADMIN, openapi_extra=allow(Role.ADMIN))
def keys_page(request: Request, services: ServicesDep, visit: VisitDep) -> HTMLResponse:
    """Every active API key (``?revoked=1``: revoked ones too), and the form for a new one."""
    return _keys_page(request, services)


@router.post(f"{ADMIN}/keys", openapi_extra=allow(Role.ADMIN, audit="key.create"))
def create_key(
    request: Request,
    services: ServicesDep,
    visit: VisitDep,
    role: Annotated[str, Form(max_length=16)],
    tenant: Annotated[str, Form(max_length=64)],
    name: Annotated[str, Form(max_length=200)] = "",
    rate_per_minute: Annotated[str, Form(max_length=8)] = "",
    max_in_flight: Annotated[str, Form(max_length=8)] = "",
) -> HTMLResponse:
    """Make a key; the page that answers shows it once."""
    form = {"role": role, "tenant": tenant, "name": name}
    form |= {"rate_per_minute": rate_per_minute, "max_in_flight": max_in_flight}
    try:
        new = NewKey(
            _role(role),
            tenant.strip(),
            name,
            _count(rate_per_minute, "rate_per_minute"),
            _count(max_in_flight, "max_in_flight"),
        )
        issued = services.keys.create(new, by=visit.principal.key_id)
    except InvalidRequest as exc:
        call_state(request.scope).error_code = exc.code
        return _keys_page(request, services, error=exc, form=form)
    note_object(request, issued.record.id)
    return _keys_page(request, services, issued=issued)


@router.post(f"{ADMIN}/keys/{{key_id}}/revoke", openapi_extra=allow(Role.ADMIN, audit="key.revoke"))
def revoke_key(key_id: str, services: ServicesDep, visit: VisitDep) -> RedirectResponse:
    """Revoke at once; its console sessions end on their next request."""
    services.keys.revoke(key_id, by=visit.principal.key_id)
    return RedirectResponse(ADMIN, status_code=303)


@router.get(AUDIT, openapi_extra=allow(Role.ADMIN))
def audit_page(request: Request, services: ServicesDep, visit: VisitDep) -> HTMLResponse:
    """The audit log, newest first, filtered by key, tenant, action, object, outcome and
    date; ``Older`` pages on."""
    form = {k: v.strip() for k in AUDIT_FIELDS if (v := request.query_params.get(k, "")).strip()}
    cursor = request.query_params.get("before", "")
    error = None
    rows = []
    try:
        rows = services.audit.query(_audit_query(form, cursor))
    except InvalidRequest as exc:
        error = exc
        call_state(request.scope).error_code = exc.code
    older = None
    if len(rows) == AUDIT_PAGE:
        older = f"{AUDIT}?{urlencode({**form, 'before': str(rows[-1].id)})}"
    return render(
        request,
        "admin_audit.html",
        status=422 if error else 200,
        rows=rows,
        form=form,
        error=error,
        older=older,
        first=f"{AUDIT}?{urlencode(form)}" if cursor else None,
    )


def _audit_query(form: dict[str, str], cursor: str) -> AuditQuery:
    for name in ("key_id", "tenant", "action", "object_id", "outcome"):
        value = form.get(name)
        if value is not None and (len(value) > 128 or not value.isprintable()):
            raise InvalidRequest(f"{name} must be at most 128 printable characters", field=name)
    try:
        before = whole_number(cursor, "before") if cursor else None
    except InvalidRequest:
        raise InvalidRequest(
            "before: this page link is not valid; start again from the first page", field="before"
        ) from None
    since, until = day(form.get("since"), "since"), day(form.get("until"), "until")
    return AuditQuery(
        key_id=form.get("key_id"),
        tenant=form.get("tenant"),
        action=form.get("action"),
        object_id=form.get("object_id"),
        outcome=form.get("outcome"),
        since=day_start(since) if since else None,
        until=day_end(until) if until else None,  # the whole last day
        before_id=before,
        limit=AUDIT_PAGE,
    )


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidRequest(f"role must be one of: {', '.join(ROLES)}", field="role") from None


def _count(value: str, field: str) -> int | None:
    """An optional limit from a form field ('' means the service's default)."""
    return whole_number(value, field) if value.strip() else None
