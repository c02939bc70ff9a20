"""Callback URLs: only allowed hosts, and no loopback, private or link-local address unless
``webhooks.allow_private``, checked at submit and again after DNS resolution at delivery."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import pytest
from factories import RESULT  # type: ignore[import-not-found]
from fastapi.testclient import TestClient
from sqlalchemy import select

from steadyvoice.jobs.store import JobStore
from steadyvoice.settings import Settings, WebhookSettings
from steadyvoice.webhooks.models import WebhookDelivery
from steadyvoice.webhooks.sender import WebhookSender
from steadyvoice.webhooks.urls import address_allowed, host_allowed

HOSTS = ["localhost", "127.0.0.1", "10.0.0.7", "169.254.169.254", "::1", "hooks.example.com"]


@pytest.fixture
def client(client_factory: Callable[..., TestClient]) -> TestClient:
    return client_factory(
        webhooks={"allowed_hosts": HOSTS, "secrets": {"default": "s"}, "max_attempts": 3}
    )


REFUSED = [
    ("http://127.0.0.1:9/hook", "address_not_public"),
    ("http://10.0.0.7/hook", "address_not_public"),
    ("http://169.254.169.254/latest/meta-data", "address_not_public"),
    ("http://[::1]/hook", "address_not_public"),
    ("http://evil.example.net/hook", "host_not_allowed"),
    ("http://hooks.example.com.evil.net/hook", "host_not_allowed"),
    ("ftp://hooks.example.com/hook", "malformed"),
    ("http://user:pw@hooks.example.com/hook", "malformed"),
    ("/relative", "malformed"),
]


def test_refused_at_submit_with_nothing_recorded(client: TestClient) -> None:
    for url, reason in REFUSED:
        answer = client.post("/v1/jobs", json={"text": "Hello.", "callback_url": url})
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert (url, error["code"], error["reason"]) == (url, "callback_url_refused", reason)
    assert client.get("/v1/jobs").json()["items"] == []


def test_a_tenant_without_a_signing_secret_cannot_set_callbacks(
    client_factory: Callable[..., TestClient],
) -> None:
    client = client_factory(webhooks={"allowed_hosts": ["hooks.example.com"]})
    answer = client.post(
        "/v1/jobs", json={"text": "Hello.", "callback_url": "https://hooks.example.com/x"}
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["reason"] == "no_signing_secret"


def test_a_name_that_resolves_to_loopback_is_refused_at_delivery(client: TestClient) -> None:
    answer = client.post(
        "/v1/jobs", json={"text": "Hello.", "callback_url": "http://localhost:9/hook"}
    )
    assert answer.status_code == 202  # a name: judged by what it resolves to, when called
    store: JobStore = client.app.state.services.store  # type: ignore[attr-defined]
    settings: Settings = client.app.state.services.settings  # type: ignore[attr-defined]
    claim = store.claim("w:1", 30)
    assert claim is not None and store.complete(claim, RESULT)
    assert WebhookSender(store, settings).run_once() == 1  # the real system resolver
    with store.reading() as s:
        [attempt] = s.scalars(select(WebhookDelivery))
    assert attempt.error is not None and attempt.error.startswith("address_refused")
    assert attempt.address is None and attempt.status_code is None
    assert store.get(answer.json()["id"]).webhook_state == "failed"  # no retry
    assert WebhookSender(store, settings).run_once() == 0


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("2002:a9fe:a9fe::1", False),  # 6to4 of 169.254.169.254 (cloud metadata)
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2002:0a00:0007::1", False),  # 6to4 of 10.0.0.7
        ("fec0::1", False),  # site-local
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("2001:0:5db8:d70e:0:0:80ff:fffe", False),  # Teredo to 127.0.0.1
        ("2002:5db8:d70e::1", True),  # 6to4 of a public address
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
    ],
)
def test_which_addresses_are_public(address: str, public: bool) -> None:
    ip = ipaddress.ip_address(address)
    assert address_allowed(ip, WebhookSettings()) is public
    assert address_allowed(ip, WebhookSettings(allow_private=True))


def test_allowed_hosts_match_exactly_or_by_subdomain_wildcard() -> None:
    allowed = ["hooks.example.com", "*.tenant.example"]
    assert host_allowed("hooks.example.com", allowed)
    assert host_allowed("a.b.tenant.example", allowed)
    assert not host_allowed("tenant.example", allowed)
    assert not host_allowed("xhooks.example.com", allowed)
    assert not host_allowed("eviltenant.example", allowed)
    assert not host_allowed("hooks.example.com", [])
