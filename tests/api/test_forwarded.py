"""The forwarded-headers middleware at the ASGI level: whom it believes, and what."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send

from steadyvoice.api.forwarded import ForwardedMiddleware


def seen(peer: str, headers: list[tuple[bytes, bytes]], trusted: str = "127.0.0.1") -> Scope:
    """The scope the app behind the middleware gets, for one request from ``peer``."""
    got: dict[str, Any] = {}

    async def app(scope: Scope, _receive: Receive, _send: Send) -> None:
        got.update(scope)

    async def nothing() -> Any:  # pragma: no cover - never called
        return {}

    async def discard(_: Any) -> None:  # pragma: no cover - never called
        return None

    scope = {"type": "http", "client": (peer, 5555), "scheme": "http", "headers": headers}
    asyncio.run(ForwardedMiddleware(app, trusted)(scope, nothing, discard))
    return got


def test_an_untrusted_peer_is_taken_as_it_is() -> None:
    scope = seen(
        "192.0.2.9", [(b"x-forwarded-for", b"203.0.113.1"), (b"x-forwarded-proto", b"https")]
    )
    assert scope["client"] == ("192.0.2.9", 5555) and scope["scheme"] == "http"


def test_a_trusted_proxy_names_the_client_and_scheme() -> None:
    headers = [(b"x-forwarded-for", b"203.0.113.1"), (b"x-forwarded-proto", b"https")]
    scope = seen("10.0.0.2", headers, trusted="10.0.0.0/8")
    assert scope["client"] == ("203.0.113.1", 0) and scope["scheme"] == "https"


def test_several_headers_are_one_list_read_from_the_right() -> None:
    headers = [(b"x-forwarded-for", b"198.51.100.1"), (b"x-forwarded-for", b"203.0.113.1")]
    assert seen("127.0.0.1", headers)["client"] == ("203.0.113.1", 0)


@pytest.mark.parametrize("proto", [b"javascript", b"https\x1b", b"ftp", b""])
def test_only_http_or_https_is_believed_as_the_scheme(proto: bytes) -> None:
    assert seen("127.0.0.1", [(b"x-forwarded-proto", proto)])["scheme"] == "http"


def test_a_forged_hop_is_logged_once_escaped(caplog: pytest.LogCaptureFixture) -> None:
    app = ForwardedMiddleware(lambda *_: asyncio.sleep(0), "127.0.0.1")  # type: ignore[arg-type,return-value]

    async def twice() -> None:
        for _ in range(2):
            scope = {
                "type": "http",
                "client": ("127.0.0.1", 1),
                "headers": [(b"x-forwarded-for", b"<x>\x1b")],
            }
            await app(scope, None, None)  # type: ignore[arg-type]
            assert scope["client"] == ("127.0.0.1", 1)

    with caplog.at_level(logging.WARNING, logger="steadyvoice.api"):
        asyncio.run(twice())
    warned = [r for r in caplog.records if "X-Forwarded-For" in r.getMessage()]
    assert len(warned) == 1
    assert warned[0].forwarded_for == "'<x>\\x1b'"


def test_forwarded_headers_from_an_untrusted_peer_are_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A proxy left out of the trusted list makes every client one address: said once."""
    app = ForwardedMiddleware(lambda *_: asyncio.sleep(0), "127.0.0.1")  # type: ignore[arg-type,return-value]

    async def calls() -> None:
        for headers in ([], [(b"x-forwarded-for", b"203.0.113.1")], [(b"x-forwarded-for", b"1")]):
            scope = {"type": "http", "client": ("192.0.2.9", 1), "headers": headers}
            await app(scope, None, None)  # type: ignore[arg-type]
            assert scope["client"] == ("192.0.2.9", 1)

    with caplog.at_level(logging.WARNING, logger="steadyvoice.api"):
        asyncio.run(calls())
    warned = [r for r in caplog.records if "not in api.forwarded_allow_ips" in r.getMessage()]
    assert len(warned) == 1 and getattr(warned[0], "peer", None) == "192.0.2.9"
