"""Pure ASGI middleware: request ids, request metrics and a hard cap on request body size."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from steadyvoice.api.policy import UNMATCHED, known_routes
from steadyvoice.errors import BodyTooLarge
from steadyvoice.observability import metrics
from steadyvoice.observability.logs import request_id_var
from steadyvoice.settings import SloSettings

log = logging.getLogger("steadyvoice.api")

# A client's X-Request-ID is kept (to follow a call across systems) only in this charset and
# length; anything else (markup, control characters, a megabyte) is replaced by our own id,
# so no log line, audit row or response ever carries it.
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class RequestIdMiddleware:
    """Takes a sane ``X-Request-ID`` or makes one; echoes it and puts it on every log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = given if _SAFE_ID.fullmatch(given) else uuid.uuid4().hex
        token = request_id_var.set(rid)

        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error")
            if not started:
                await send_json(
                    send_with_id,
                    500,
                    {
                        "code": "internal_error",
                        "message": "internal error; quote the request_id",
                        "request_id": rid,
                    },
                )
        finally:
            request_id_var.reset(token)


class MetricsMiddleware:
    """Counts and times every request by route template (``/v1/jobs/{job_id}``), never path.

    Added outermost, so it also sees answers given by other middleware (413, last-resort 500).
    """

    def __init__(self, app: ASGIApp, slo: SloSettings | None = None) -> None:
        self.app = app
        self._templates: list[tuple[re.Pattern[str], str]] | None = None
        metrics.configure(slo or SloSettings())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            metrics.observe_request(
                self.route_template(scope), scope["method"], status, time.perf_counter() - started
            )

    def route_template(self, scope: Scope) -> str:
        """The matched route's template; for answers given before routing (413), a re-match."""
        path = getattr(scope.get("route"), "path", None)
        if isinstance(path, str):
            return path
        if self._templates is None:
            self._templates = _compiled_templates(scope.get("app"))
        for pattern, template in self._templates:
            if pattern.match(scope["path"]):
                return template
        return UNMATCHED


def _compiled_templates(app: object) -> list[tuple[re.Pattern[str], str]]:
    """Every route template of the app, compiled the way Starlette matches paths."""
    unique = dict.fromkeys(r.path for r in known_routes(app) if r.path != UNMATCHED)
    return [(compile_path(t)[0], t) for t in unique]


@dataclass(frozen=True)
class BodyLimit:
    """A body size limit and the error that refuses a body over it."""

    max_bytes: int
    error: type[BodyTooLarge] = BodyTooLarge
    what: str = "the request body"
    shown: int | None = None  # the limit to name to the client, if not ``max_bytes``
    advice: str = ""  # what to do instead, appended to the message


class BodyLimitMiddleware:
    """Refuses bodies over the limit with 413, by header or while streaming in.

    ``routes`` gives some paths (uploads) their own limit; everything else gets ``max_bytes``.
    The body is never buffered here: counting stops the read as soon as the limit is passed.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, routes: dict[str, BodyLimit] | None = None
    ) -> None:
        self.app = app
        self.default = BodyLimit(max_bytes)
        self.routes = routes or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.routes.get(scope["path"].rstrip("/"), self.default)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit.max_bytes):
            await _refuse(send, limit, int(declared) if declared.isdigit() else None)
            return
        metered = _MeteredBody(receive, send, limit)
        try:
            await self.app(scope, metered.receive, metered.send)
        except ClientDisconnect:
            if not metered.too_big:
                raise
        if metered.too_big and not metered.started:
            await _refuse(send, limit, metered.seen, received_all=False)


class _MeteredBody:
    """Counts body bytes as they arrive; past the limit, ends the read and answers 413."""

    def __init__(self, receive: Receive, send: Send, limit: BodyLimit) -> None:
        self._receive = receive
        self._send = send
        self._limit = limit
        self.seen = 0
        self.too_big = False
        self.started = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self._limit.max_bytes:
                self.too_big = True
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if self.too_big:
            if not self.started:
                self.started = True
                await _refuse(self._send, self._limit, self.seen, received_all=False)
            return
        self.started = self.started or message["type"] == "http.response.start"
        await self._send(message)


async def _refuse(
    send: Send, limit: BodyLimit, measured: int | None, *, received_all: bool = True
) -> None:
    """413 naming the size measured (a declared ``Content-Length``, or what arrived before
    the read was cut off), the limit and the unit."""
    refusal = limit.error.of_size(
        limit.what,
        measured,
        limit.shown or limit.max_bytes,
        received_all=received_all,
        advice=limit.advice,
    )
    await send_json(send, 413, {**refusal.to_dict(), "request_id": request_id_var.get()})


async def send_json(send: Send, status: int, error: dict[str, Any]) -> None:
    """Send a complete ``{error: ...}`` response at the ASGI level."""
    body = json.dumps({"error": error}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
