"""Console routes: every state-changing one checks its CSRF token, every refusal is a page.

:class:`ConsoleRoute` does both around the handler, so a new console route cannot forget
either: a POST without the session's token (or from another origin) is refused 403
``csrf_refused`` before the handler runs, and a domain error becomes the error page with the
API's status and message instead of JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.datastructures import UploadFile

from steadyvoice.api.deps import get_services
from steadyvoice.api.policy import SAFE_METHODS
from steadyvoice.api.validation import validation_error
from steadyvoice.console.origin import same_origin
from steadyvoice.console.sessions import same_token
from steadyvoice.console.templates import error_page
from steadyvoice.console.visit import CSRF_FIELD, CSRF_HEADER, SIGNIN_COOKIE, visit_in
from steadyvoice.errors import CsrfRefused, SteadyVoiceError

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


async def check_csrf(request: Request) -> None:
    """Refuse a state-changing request unless it carries its session's token (sign-in: the
    sign-in cookie's) and, when the browser names its origin, comes from this one."""
    origin = request.headers.get("origin")
    # "null": an opaque origin (a page under no-referrer, a sandbox) says nothing either way.
    if origin not in (None, "null") and not _from_here(request, origin):
        raise CsrfRefused("this form was sent from another site; open the console and retry")
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        form = await request.form()
        field = form.get(CSRF_FIELD)
        given = field if isinstance(field, str) and not isinstance(field, UploadFile) else ""
    visit = visit_in(request.scope)
    expected = visit.csrf if visit else request.cookies.get(SIGNIN_COOKIE, "")
    if not expected or not given or not same_token(expected, given):
        raise CsrfRefused(
            "the form's security token is missing or out of date; reload the page and retry"
        )


def _from_here(request: Request, origin: str) -> bool:
    public = get_services(request).settings.console.public_origin
    return same_origin(origin, request.url.scheme, request.headers.get("host", ""), public)


class ConsoleRoute(APIRoute):
    """An API route with the console's CSRF check and HTML refusals."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                if request.method not in SAFE_METHODS:
                    await check_csrf(request)
                return await handler(request)
            except SteadyVoiceError as exc:
                return error_page(request.scope, exc)
            except RequestValidationError as exc:
                return error_page(request.scope, validation_error(request, exc))

        return console_handler


def console_router() -> APIRouter:
    """A router for console pages: kept out of the API schema, with :class:`ConsoleRoute`."""
    return APIRouter(route_class=ConsoleRoute, include_in_schema=False)
