"""Checks every HTTP error answer must pass (imported as ``from http_checks import ...``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Response(Protocol):
    """What the tests read from a TestClient response (whichever httpx it is built on)."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def text(self) -> str: ...
    def json(self) -> Any: ...


def error_of(resp: Response, status: int, code: str) -> dict[str, Any]:
    """Every error: ``{"error": {code, message, request_id, ...}}`` and no stack trace."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error"}
    err: dict[str, Any] = body["error"]
    assert err["code"] == code
    assert isinstance(err["message"], str) and err["message"]
    assert err["request_id"] == resp.headers["x-request-id"]
    assert "Traceback" not in resp.text
    return err


# The headers every answer carries (steadyvoice/api/headers.py), written out: the tests pin them.
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cache-control": "no-store",
}
CSP = "default-src 'none'; frame-ancestors 'none'"


def hardened(resp: Response, csp: bool = True) -> None:
    """``resp`` carries every security header (the CSP only where ``csp``: not on /docs)."""
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers.get(name) == value, (name, resp.status_code, dict(resp.headers))
    assert resp.headers.get("content-security-policy") == (CSP if csp else None)
