"""Server-rendered pages: one Jinja2 environment over the package's templates, autoescaped."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.types import Scope

from steadyvoice.api.policy import call_state
from steadyvoice.console.nav import nav_for
from steadyvoice.console.visit import CSRF_FIELD, PREFIX, Visit, visit_in
from steadyvoice.errors import SteadyVoiceError
from steadyvoice.security.principal import Role


@lru_cache(maxsize=1)
def environment() -> Environment:
    """Built once: the templates ship in the package and never change while it runs."""
    env = Environment(
        loader=PackageLoader("steadyvoice.console", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static"] = lambda name: f"{PREFIX}/static/{name}"
    env.globals["csrf_field"] = CSRF_FIELD
    return env


def page(
    name: str,
    visit: Visit | None,
    path: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """``name`` rendered for ``visit`` (``None``: signed out), at ``path`` (for the nav)."""

    def may(role: str) -> bool:
        return visit is not None and visit.principal.may(Role(role))

    # Signed out (sign-in's form), the page brings its own token.
    csrf = visit.csrf if visit else context.pop("csrf", "")
    html = (
        environment()
        .get_template(name)
        .render(
            visit=visit,
            principal=visit.principal if visit else None,
            nav=nav_for(visit),
            csrf=csrf,
            path=path,
            may=may,
            **context,
        )
    )
    # Forms posted from a no-referrer page carry ``Origin: null``; same-origin lets the CSRF
    # check see this origin, and still tells no other site where the browser came from.
    return HTMLResponse(
        html, status_code=status, headers={"Referrer-Policy": "same-origin", **(headers or {})}
    )


def render(request: Request, name: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """A page for the request's visit (the usual way a route answers)."""
    return page(name, visit_in(request.scope), request.url.path, status=status, **context)


def error_page(scope: Scope, exc: SteadyVoiceError) -> HTMLResponse:
    """A refusal as a page: the status and the message of the API's answer, in HTML."""
    call_state(scope).error_code = exc.code  # the audit row names the code, as for the API
    headers = {}
    if exc.status in (429, 503):
        headers["Retry-After"] = str(exc.details.get("retry_after", 5))
    return page(
        "error.html",
        visit_in(scope),
        str(scope.get("path", "")),
        status=exc.status,
        headers=headers,
        error=exc,
        title=_TITLES.get(exc.status, "Refused"),
    )


_TITLES = {
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    409: "Not yet",
    410: "Gone",
    413: "Too large",
    422: "Please check the form",
    429: "Too many requests",
    503: "Unavailable",
}
