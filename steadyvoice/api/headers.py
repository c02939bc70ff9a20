"""Security headers on every response: no sniffing, no framing, no caching of tenant data."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
)
# JSON and audio only: nothing may run, load or frame. The docs pages (when enabled) need
# scripts and styles from the page itself, so they get no CSP here.
CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
DOC_PREFIXES = ("/docs", "/redoc")
# The console's pages (steadyvoice.console): script, style, images and media from the service
# itself, never inline; forms post only to it. blob: media is a recording heard before upload.
UI_PREFIX = "/ui/"
UI_CSP = (
    b"content-security-policy",
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    b"media-src 'self' blob:; connect-src 'self'; form-action 'self'; "
    b"frame-ancestors 'none'; base-uri 'none'",
)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        add: tuple[tuple[bytes, bytes], ...] = HEADERS
        if not path.startswith(DOC_PREFIXES):
            add = (*HEADERS, UI_CSP if path.startswith(UI_PREFIX) else CSP)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in add if k not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)
