"""Who may call each route, and which calls the audit log records.

Every route declares its least role with ``allow(Role.X)`` (and, for audio downloads, an audit
action). ``check_routes`` refuses to build an app with a route that declares none, except the
three open probes, so a new route cannot forget auth. The declaration also appears in the
OpenAPI schema (``x-steadyvoice-role``), where the auth tests read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from steadyvoice.security.principal import Principal, Role

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
DOC_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
ROLE = "x-steadyvoice-role"
AUDIT = "x-steadyvoice-audit"
UNMATCHED = "unmatched"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def allow(role: Role, audit: str | None = None) -> dict[str, Any]:
    """``openapi_extra`` for a route: the least role it needs, and its audit action if a read
    must be audited (downloads). State-changing calls are always audited."""
    extra: dict[str, Any] = {ROLE: role.value}
    if audit is not None:
        extra[AUDIT] = audit
    return extra


@dataclass(frozen=True)
class RoutePolicy:
    """What the request's route needs. ``role`` is ``None`` for the open routes."""

    role: Role | None
    template: str
    audit: str | None = None
    path_params: dict[str, Any] = field(default_factory=dict)


@dataclass
class CallState:
    """What the middleware and the route learned about one call, kept on the ASGI scope."""

    policy: RoutePolicy | None = None
    principal: Principal | None = None
    key_id: str | None = None  # the key presented, when known, even if refused
    object_id: str | None = None
    # The console's middleware decided access from its session cookie (steadyvoice.console).
    console: bool = False
    # A refusal's code when its body is not JSON (the console's HTML pages), for the audit log.
    error_code: str | None = None


_STATE = "steadyvoice.call"


def call_state(scope: Scope) -> CallState:
    state = scope.get(_STATE)
    if not isinstance(state, CallState):
        state = scope[_STATE] = CallState()
    return state


@dataclass(frozen=True)
class KnownRoute:
    """One route as requests reach it: its full template, the declared route, a matcher."""

    path: str
    declared: BaseRoute
    matcher: Any  # has Starlette's ``matches(scope)``


def known_routes(app: object) -> list[KnownRoute]:
    """Every route of the app with its full path, routes of included routers too."""
    routes: list[BaseRoute] = list(getattr(getattr(app, "router", None), "routes", ()))
    try:  # FastAPI versions that keep included routers whole hide their routes behind contexts
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - older FastAPI: every route is top level
        return [KnownRoute(str(getattr(r, "path", UNMATCHED)), r, r) for r in routes]
    return [
        KnownRoute(str(c.path or UNMATCHED), c.original_route, c)
        for c in iter_route_contexts(routes)
    ]


class Policies:
    """Resolves a request to its route's policy before routing (so auth comes first)."""

    def __init__(self, app: FastAPI, docs_open: bool) -> None:
        self._app = app
        self._open = OPEN_PATHS | DOC_PATHS if docs_open else OPEN_PATHS
        self._routes: list[KnownRoute] | None = None

    def resolve(self, scope: Scope) -> RoutePolicy:
        if scope["path"] in self._open:
            return RoutePolicy(None, scope["path"])
        if self._routes is None:  # routes are all added by the time requests come
            self._routes = known_routes(self._app)
        partial: RoutePolicy | None = None
        for route in self._routes:
            match, child = route.matcher.matches(scope)
            if match is Match.FULL:
                return _policy_of(route, child.get("path_params", {}))
            if match is Match.PARTIAL and partial is None:  # right path, wrong method: 405
                partial = RoutePolicy(Role.VIEWER, route.path)
        return partial or RoutePolicy(Role.VIEWER, UNMATCHED)


def _policy_of(route: KnownRoute, params: dict[str, Any]) -> RoutePolicy:
    declared = route.declared
    if not isinstance(declared, APIRoute):
        # The schema and docs pages need any valid key; anything else undeclared, admin.
        role = Role.VIEWER if route.path in DOC_PATHS else Role.ADMIN
        return RoutePolicy(role, route.path, path_params=params)
    extra = declared.openapi_extra or {}
    # A route that declares nothing is admin-only (check_routes stops that at build time).
    role = Role(extra.get(ROLE, Role.ADMIN.value))
    return RoutePolicy(role, route.path, extra.get(AUDIT), params)


def check_routes(app: FastAPI) -> None:
    """Every API route but the open probes declares a role; raise listing those that do not."""
    missing = [
        f"{sorted(r.declared.methods or ())} {r.path}"
        for r in known_routes(app)
        if isinstance(r.declared, APIRoute)
        and r.path not in OPEN_PATHS
        and ROLE not in (r.declared.openapi_extra or {})
    ]
    if missing:
        raise RuntimeError("routes without allow(Role...): " + ", ".join(missing))
