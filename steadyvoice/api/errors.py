"""Maps every failure to ``{error: {code, message, ...}}``; clients never see a stack trace."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from steadyvoice.api.policy import known_routes
from steadyvoice.api.validation import validation_error
from steadyvoice.errors import SteadyVoiceError, StorageFull, StoreUnavailable
from steadyvoice.observability.logs import request_id_var

log = logging.getLogger("steadyvoice.api")

_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "body_too_large",
    415: "unsupported_media_type",
}


def error_response(
    http_status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {**(details or {}), "code": code, "message": message}
    rid = request_id_var.get()
    if rid:
        body["request_id"] = rid
    return JSONResponse({"error": body}, status_code=http_status)


def domain_response(exc: SteadyVoiceError) -> JSONResponse:
    """The answer to a domain error, from a route or from middleware (an ASGI app itself).

    429 and 503 say when to retry (``Retry-After``: the error's ``retry_after``, else 5 s).
    """
    response = error_response(exc.status, exc.code, exc.message, exc.details)
    if exc.status in (429, 503):
        response.headers["Retry-After"] = str(exc.details.get("retry_after", 5))
    return response


async def _domain(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SteadyVoiceError)
    if exc.status >= 500:
        log.error("request failed", extra={"error_code": exc.code})
    return domain_response(exc)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return domain_response(validation_error(request, exc))


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:  # an unparseable body: the same answer as any invalid body
        return error_response(422, "invalid_request", f"the request is not valid: {exc.detail}")
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    response = error_response(exc.status_code, code, str(exc.detail))
    response.headers.update(exc.headers or {})  # e.g. Allow on 405, completed below
    allowed = _allowed_methods(request) if exc.status_code == 405 else ""
    if allowed:
        response.headers["Allow"] = allowed
    return response


def _allowed_methods(request: Request) -> str:
    """Every method the path answers to. Starlette names only the first route on the path, but
    GET and DELETE /v1/voices/{id} are two routes, and ``Allow`` must list them all."""
    methods: set[str] = set()
    for route in known_routes(request.app):
        match, _ = route.matcher.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route.declared, "methods", None) or set()
    return ", ".join(sorted(methods))


async def _store_down(_: Request, exc: Exception) -> JSONResponse:
    if _database_disk_full(exc):
        log.error("job store disk full", extra={"error": type(exc).__name__})
        return domain_response(
            StorageFull("the database's disk is full; nothing was recorded: free space, retry")
        )
    log.error("job store unavailable", extra={"error": type(exc).__name__})
    return domain_response(
        StoreUnavailable("the job store is unreachable; nothing was recorded, retry")
    )


def _database_disk_full(exc: Exception) -> bool:
    """SQLite's ``SQLITE_FULL`` or PostgreSQL's ``disk_full`` (53100): the transaction was
    rolled back whole, so the database is intact and a retry after freeing space works."""
    orig = getattr(exc, "orig", None)
    return (
        getattr(orig, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        or getattr(orig, "sqlstate", None) == "53100"
    )


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "internal error; quote the request_id")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SteadyVoiceError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(OperationalError, _store_down)
    app.add_exception_handler(Exception, _unexpected)
