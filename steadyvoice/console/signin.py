"""Sign-in with an API key, sign-out, and the redirects into the console."""

from __future__ import annotations

import secrets
from typing import Annotated

import anyio.to_thread
from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from steadyvoice.api.deps import ServicesDep
from steadyvoice.api.policy import RoutePolicy, allow, call_state
from steadyvoice.console.access import FAVICON, STATIC_PREFIX
from steadyvoice.console.deps import ConsoleDep
from steadyvoice.console.routing import console_router
from steadyvoice.console.templates import render
from steadyvoice.console.visit import PREFIX, SESSION_COOKIE, SIGNIN_COOKIE, VisitDep
from steadyvoice.errors import KeyRevoked, Unauthenticated
from steadyvoice.security.keys import KeyStore
from steadyvoice.security.principal import Principal, Role

router = console_router()
HOME = f"{PREFIX}/speak"
SIGNIN = f"{PREFIX}/signin"
# Open routes (the console's middleware lets them through without a session) still declare
# a role: every route does (steadyvoice.api.policy.check_routes).
OPEN = allow(Role.VIEWER)


@router.get("/", openapi_extra=OPEN)
@router.get(PREFIX, openapi_extra=OPEN)
def to_console() -> RedirectResponse:
    """A browser at the service's address lands in the console."""
    return RedirectResponse(f"{PREFIX}/", status_code=307)


@router.get(FAVICON, openapi_extra=OPEN)
def favicon() -> RedirectResponse:
    """The console's icon, for browsers that ask at the site's root (pages link it)."""
    return RedirectResponse(f"{STATIC_PREFIX}favicon.svg", status_code=301)


@router.get(f"{PREFIX}/", openapi_extra=allow(Role.VIEWER))
def home() -> RedirectResponse:
    """The first page after sign-in."""
    return RedirectResponse(HOME, status_code=303)


@router.get(SIGNIN, openapi_extra=OPEN)
def signin_page(request: Request, console: ConsoleDep, next: str = HOME) -> Response:
    """The sign-in form (a signed-in browser goes straight on)."""
    token = request.cookies.get(SESSION_COOKIE)
    if token and console.sessions.find(token) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _form(request, next)


@router.post(SIGNIN, openapi_extra=allow(Role.VIEWER, audit="console.signin"))
def signin(
    request: Request,
    services: ServicesDep,
    console: ConsoleDep,
    key: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = HOME,
) -> Response:
    """Check the key as the API would; on success start a session and go on."""
    state = call_state(request.scope)
    # Audited like any call that changes something (the middleware left it open).
    state.policy = RoutePolicy(Role.VIEWER, SIGNIN, "console.signin")
    client = request.client.host if request.client else None
    console.failures.check(client)
    try:
        principal = _check(services.keys, key.strip())
    except Unauthenticated as exc:
        console.failures.failed(client)
        state.error_code = exc.code
        if isinstance(exc, KeyRevoked):
            state.key_id = exc.details.get("key_id")
        return _form(request, next, error=exc.message, status=401)
    state.principal, state.key_id = principal, principal.key_id
    earlier = request.cookies.get(SESSION_COOKIE)
    if earlier:  # signing in again (maybe with another key) ends the session before
        console.sessions.end(earlier)
    token, _ = console.sessions.start(principal.key_id)
    response = RedirectResponse(_safe_next(next), status_code=303)
    _set_cookie(request, response, SESSION_COOKIE, token, PREFIX)
    response.delete_cookie(SIGNIN_COOKIE, path=SIGNIN)
    return response


@router.post(f"{PREFIX}/signout", openapi_extra=allow(Role.VIEWER, audit="console.signout"))
async def signout(visit: VisitDep, console: ConsoleDep) -> RedirectResponse:
    """End the session here and in the browser."""
    await anyio.to_thread.run_sync(console.sessions.end, visit.token)
    response = RedirectResponse(SIGNIN, status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


def _check(keys: KeyStore, token: str) -> Principal:
    if not token:
        raise Unauthenticated("enter an API key (it starts with sv_)")
    return keys.principal_of(keys.check(token))


def _form(request: Request, next: str, *, error: str = "", status: int = 200) -> HTMLResponse:
    """The form with a fresh token, also set as a cookie (there is no session to hold it)."""
    csrf = secrets.token_urlsafe(32)
    response = render(
        request, "signin.html", status=status, csrf=csrf, next=_safe_next(next), error=error
    )
    _set_cookie(request, response, SIGNIN_COOKIE, csrf, SIGNIN)
    return response


def _set_cookie(request: Request, response: Response, name: str, value: str, path: str) -> None:
    """For this site only, out of scripts' reach, and only over TLS when TLS is in use."""
    secure = request.url.scheme == "https"
    response.set_cookie(name, value, path=path, httponly=True, samesite="strict", secure=secure)


def _safe_next(target: str) -> str:
    """Only a console path: never another site (``//evil``) nor a scheme."""
    if target.startswith(f"{PREFIX}/") and not target.startswith("//") and "\\" not in target:
        return target
    return HOME
