"""Every answer carries the full set of security headers, the last-resort 500 included
(issue 22, item 4), and a trailing slash is a 404, never a redirect built from ``Host``
(item 7)."""

from __future__ import annotations

from typing import cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from http_checks import error_of, hardened  # type: ignore[import-not-found]

from steadyvoice.api.deps import Services


def services(client: TestClient) -> Services:
    svc: Services = cast(FastAPI, client.app).state.services
    return svc


def boom(*_: object, **__: object) -> None:
    raise RuntimeError("a bug")


def test_a_failing_route_gets_the_last_resort_500_with_every_header(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services(client).store, "list_jobs", boom)
    resp = client.get("/v1/jobs", headers={"X-Request-ID": "forced-500"})
    err = error_of(resp, 500, "internal_error")
    assert err["request_id"] == "forced-500"
    assert "a bug" not in resp.text
    hardened(resp)


def test_a_failing_middleware_gets_the_last_resort_500_with_every_header(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services(client).keys, "check", boom)  # inside the access middleware
    resp = client.get("/v1/me")
    error_of(resp, 500, "internal_error")
    hardened(resp)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8443", "127.0.0.1:7860"])
@pytest.mark.parametrize("path", ["/v1/jobs/", "/v1/voices/", "/v1/keys/", "/v1/me/"])
def test_a_trailing_slash_is_a_404_not_a_redirect(client: TestClient, host: str, path: str) -> None:
    resp = client.get(path, headers={"Host": host}, follow_redirects=False)
    error_of(resp, 404, "not_found")
    assert "location" not in resp.headers
    assert "evil.example" not in resp.text
    hardened(resp)


def test_a_trailing_slash_without_a_key_is_still_refused_first(client: TestClient) -> None:
    request = client.build_request("GET", "/v1/jobs/", headers={"Host": "evil.example"})
    del request.headers["authorization"]
    resp = client.send(request, follow_redirects=False)
    error_of(resp, 401, "auth_required")
    assert "location" not in resp.headers
    hardened(resp)
