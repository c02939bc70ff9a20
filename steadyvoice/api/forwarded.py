"""Pure ASGI middleware: the client's address and scheme from a trusted proxy's headers.

Replaces uvicorn's proxy-headers middleware, which copies any text from ``X-Forwarded-For``
into the client address (and from there into the audit log). Here only IP addresses are
believed, from peers in ``api.forwarded_allow_ips``, taking the right-most hop that is not a
trusted proxy; anything else leaves the last address known for certain.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from steadyvoice.security.proxies import TrustedProxies, parse_address

log = logging.getLogger("steadyvoice.api")

_SCHEMES = frozenset({"http", "https"})
_SHOWN_CHARS = 80


class ForwardedMiddleware:
    """Sets ``scope["client"]`` and ``scope["scheme"]`` from ``X-Forwarded-For`` and
    ``X-Forwarded-Proto`` when the peer is a trusted proxy. A forged or garbled value is
    logged (once per process, escaped) and otherwise ignored."""

    def __init__(self, app: ASGIApp, trusted: str) -> None:
        self.app = app
        self.trusted = TrustedProxies.parse(trusted)
        self._warned = False
        self._warned_untrusted = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self._rewrite(scope)
        await self.app(scope, receive, send)

    def _rewrite(self, scope: Scope) -> None:
        peer = parse_address(scope["client"][0]) if scope.get("client") else None
        if peer is None or not self.trusted.trusts(peer):
            if not self._warned_untrusted and any(
                n == b"x-forwarded-for" for n, _ in scope["headers"]
            ):
                # A proxy left out of api.forwarded_allow_ips makes every client one address,
                # which shares one failed-authentication limit: say so, once.
                self._warned_untrusted = True
                log.warning(
                    "ignored X-Forwarded-For from a peer not in api.forwarded_allow_ips; if "
                    "a proxy is in front of the service, add its address (logged once)",
                    extra={"peer": str(peer)},
                )
            return
        forwarded: list[bytes] = []
        proto: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded.append(value)
            elif name == b"x-forwarded-proto":
                proto = value
        if proto is not None:
            scheme = proto.decode("latin-1").rsplit(",", 1)[-1].strip().lower()
            if scheme in _SCHEMES:
                scope["scheme"] = scheme
        if not forwarded:
            return
        text = b",".join(forwarded).decode("latin-1")
        client, clean = self.trusted.client(peer, text)
        if not clean and not self._warned:
            self._warned = True
            log.warning(
                "ignored a hop of X-Forwarded-For that is not an IP address (logged once)",
                extra={"forwarded_for": ascii(text[-_SHOWN_CHARS:]), "peer": str(peer)},
            )
        scope["client"] = (str(client), 0 if client != peer else scope["client"][1])
