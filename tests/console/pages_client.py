"""In-process console visits for page tests: sign a TestClient in with a key, read tokens."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from steadyvoice.api.deps import Services
from steadyvoice.security.keys import NewKey
from steadyvoice.security.principal import Role

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')


def services_of(client: TestClient) -> Services:
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    return services


def new_key(client: TestClient, role: Role, tenant: str) -> str:
    """A fresh key's token (made directly in the key store, as ``keys create`` does)."""
    return services_of(client).keys.create(NewKey(role, tenant), by="test").token


def sign_in(client: TestClient, token: str) -> str:
    """Sign ``client`` in with ``token`` (through the sign-in form); the session's CSRF token."""
    client.headers.pop("Authorization", None)
    client.cookies.clear()
    form = client.get("/ui/signin")
    found = _CSRF.search(form.text)
    assert found, form.text
    done = client.post(
        "/ui/signin", data={"key": token, "csrf_token": found.group(1)}, follow_redirects=False
    )
    assert done.status_code == 303, done.text
    return csrf_of(client.get("/ui/record").text)


def csrf_of(html: str) -> str:
    found = _META.search(html)
    assert found, html[:500]
    return found.group(1)
