"""Who is looking at a console page: the session and the caller it stands for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.types import Scope

from steadyvoice.console.sessions import ConsoleSession
from steadyvoice.errors import SessionEnded
from steadyvoice.security.principal import Principal

PREFIX = "/ui"
SESSION_COOKIE = "sv_console"
# Sign-in has no session yet: its form's CSRF token is checked against this cookie instead.
SIGNIN_COOKIE = "sv_signin"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_SCOPE_KEY = "steadyvoice.console.visit"


@dataclass(frozen=True)
class Visit:
    """A signed-in browser's request: its session, and the same ``Principal`` the API uses."""

    token: str
    session: ConsoleSession
    principal: Principal

    @property
    def csrf(self) -> str:
        return self.session.csrf


def set_visit(scope: Scope, visit: Visit) -> None:
    scope[_SCOPE_KEY] = visit


def visit_in(scope: Scope) -> Visit | None:
    visit = scope.get(_SCOPE_KEY)
    return visit if isinstance(visit, Visit) else None


def visit_of(request: Request) -> Visit:
    """The signed-in visit (the console's middleware admitted it); refuse, never open."""
    visit = visit_in(request.scope)
    if visit is None:
        raise SessionEnded("sign in to use the console")
    return visit


VisitDep = Annotated[Visit, Depends(visit_of)]
