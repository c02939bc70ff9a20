"""Refused keys per client address, and the checks made before any key is looked up: too many
refusals from one address (429 ``auth_rate_limited``) and two Authorization headers (400)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from http_checks import error_of  # type: ignore[import-not-found]

from steadyvoice.errors import TooManyFailedLogins
from steadyvoice.jobs.store import JobStore
from steadyvoice.security.keys import KeyStore
from steadyvoice.security.ratelimit import (
    WINDOW,
    FailedAuthLimit,
    RateLimiter,
    address_bucket,
    retry_after,
)
from steadyvoice.settings import SecuritySettings

MINUTE = 29_000_000


class Clock:
    def __init__(self) -> None:
        self.now = MINUTE * WINDOW + 10.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def limits(
    db_url: str, store_factory: Callable[[str], JobStore]
) -> Iterator[tuple[Clock, FailedAuthLimit, FailedAuthLimit]]:
    """The same limit in two API processes (own connection pools), on one clock."""
    clock = Clock()
    made = [RateLimiter(store_factory(db_url), clock) for _ in range(2)]
    yield clock, FailedAuthLimit(made[0], 4), FailedAuthLimit(made[1], 4)
    for limiter in made:
        limiter.close()


def test_an_address_over_its_refusals_waits_in_every_process(
    limits: tuple[Clock, FailedAuthLimit, FailedAuthLimit],
) -> None:
    clock, one, two = limits
    for i in range(4):
        (one if i % 2 else two).check("203.0.113.7")
        (one if i % 2 else two).failed("203.0.113.7")
    for limit in (one, two):
        with pytest.raises(TooManyFailedLogins) as caught:
            limit.check("203.0.113.7")
        err = caught.value
        assert (err.code, err.status) == ("auth_rate_limited", 429)
        assert err.details == {"limit": 4, "retry_after": retry_after(0, 4, 10.0, 4)}
    one.check("203.0.113.8")  # another address has its own count
    one.failed("203.0.113.7")  # counting past the limit changes nothing
    clock.now += retry_after(0, 4, 10.0, 4)
    two.check("203.0.113.7")


def test_no_limit_and_no_address_are_never_refused(
    limits: tuple[Clock, FailedAuthLimit, FailedAuthLimit],
) -> None:
    _, one, _ = limits
    for _ in range(6):
        one.failed(None)
        one.check(None)
    off = FailedAuthLimit(cast(RateLimiter, None), 0)  # never touches the limiter
    off.failed("203.0.113.9")
    off.check("203.0.113.9")


def test_addresses_are_counted_per_host() -> None:
    assert address_bucket("2001:db8:1:2::1") == address_bucket("2001:db8:1:2:ffff::9")  # a /64
    assert address_bucket("2001:db8:1:2::1") != address_bucket("2001:db8:1:3::1")
    assert address_bucket("::ffff:192.0.2.1") == address_bucket("192.0.2.1")
    assert address_bucket("192.0.2.1") != address_bucket("192.0.2.2")
    for client in ("192.0.2.1", "2001:db8::1", "testclient", "x" * 500):
        bucket = address_bucket(client)
        assert len(bucket) <= 32 and bucket.startswith("addr_"), bucket


# --- in the app -------------------------------------------------------------------------------


def _keys(client: TestClient) -> KeyStore:
    keys: KeyStore = cast(FastAPI, client.app).state.services.keys
    return keys


def _spy_lookups(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    keys = _keys(client)
    looked: list[str] = []
    real = keys.check

    def check(token: str) -> Any:
        looked.append(token)
        return real(token)

    monkeypatch.setattr(keys, "check", check)
    return looked


def test_two_authorization_headers_are_refused_before_any_lookup(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked = _spy_lookups(client, monkeypatch)
    good = client.headers["Authorization"]
    for second in (good, "Bearer sv_0123456789ab_" + "A" * 43, ""):
        request = client.build_request("GET", "/v1/me")
        headers = [(k, v) for k, v in request.headers.multi_items() if k != "authorization"]
        request.headers = httpx.Headers(
            [*headers, ("Authorization", good), ("Authorization", second)]
        )
        resp = client.send(request)
        err = error_of(resp, 400, "duplicate_authorization")
        assert err["count"] == 2
        assert "www-authenticate" not in resp.headers
    assert looked == []
    assert client.get("/v1/me").status_code == 200  # one header is fine
    twice = [("Authorization", "a"), ("Authorization", "b")]
    assert client.get("/healthz", headers=twice).status_code == 200  # no key needed, none read


def test_an_address_over_the_limit_gets_429_before_any_lookup(
    client_factory: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = client_factory(security=SecuritySettings(failed_auth_per_minute=3))
    bad = {"Authorization": "Bearer sv_0123456789ab_" + "A" * 43}
    for _ in range(3):
        error_of(client.get("/v1/me", headers=bad), 401, "invalid_key")
    looked = _spy_lookups(client, monkeypatch)
    for headers in (bad, {}):  # a wrong key, and then even the admin's own
        resp = client.get("/v1/me", headers=headers)
        err = error_of(resp, 429, "auth_rate_limited")
        assert err["limit"] == 3
        assert resp.headers["Retry-After"] == str(err["retry_after"])
        assert int(resp.headers["Retry-After"]) >= 1
    assert looked == []
    assert client.get("/healthz").status_code == 200  # the open probes are never limited
