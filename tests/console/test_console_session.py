"""The console's door, in process: sessions, cookies, CSRF, roles, tenants, limits, audit.

The browser tests (test_console_browser.py) walk the same paths in Chromium; these pin the
rules themselves, fast, with the fake engine and no worker.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from steadyvoice.api.deps import Services
from steadyvoice.console.sessions import MemorySessions
from steadyvoice.security.audit import AuditQuery
from steadyvoice.security.keys import NewKey
from steadyvoice.security.principal import Role
from steadyvoice.settings import ConsoleSettings

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
Factory = Callable[..., TestClient]


def _services(client: TestClient) -> Services:
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    return services


def _key(client: TestClient, role: Role, tenant: str = "default", **limits: Any) -> str:
    new = NewKey(role, tenant, rate_per_minute=limits.get("rate_per_minute"))
    return _services(client).keys.create(new, by="test").token


def _token_in(html: str) -> str:
    found = _CSRF.search(html)
    assert found, html[:800]
    return found.group(1)


def _sign_in(client: TestClient, key: str) -> str:
    """Sign in through the form; the session's CSRF token."""
    client.headers.pop("Authorization", None)
    client.cookies.clear()
    form = client.get("/ui/signin")
    done = client.post(
        "/ui/signin", data={"key": key, "csrf_token": _token_in(form.text)}, follow_redirects=False
    )
    assert done.status_code == 303, done.text
    return _token_in(client.get("/ui/speak").text)


@pytest.fixture
def console(client_factory: Factory) -> TestClient:
    client = client_factory()
    client.headers.pop("Authorization", None)
    return client


def test_the_service_address_leads_to_sign_in(console: TestClient) -> None:
    r = console.get("/", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (307, "/ui/")
    r = console.get("/ui/", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/ui/signin?next=%2Fui%2F")
    page = console.get("/ui/signin")
    assert page.status_code == 200 and 'type="password"' in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["cache-control"] == "no-store"


def test_sign_in_sets_a_session_cookie_and_never_shows_the_key(console: TestClient) -> None:
    key = _key(console, Role.OPERATOR)
    form = console.get("/ui/signin")
    r = console.post(
        "/ui/signin",
        data={"key": key, "csrf_token": _token_in(form.text), "next": "/ui/voices"},
        follow_redirects=False,
    )
    assert (r.status_code, r.headers["location"]) == (303, "/ui/voices")
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("sv_console="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain http here; behind TLS it is (next test)
    assert key not in cookie
    page = console.get("/ui/voices")
    assert page.status_code == 200 and key not in page.text


def test_behind_tls_the_cookie_is_secure(client_factory: Factory) -> None:
    client = client_factory()
    key = client.headers.pop("Authorization").removeprefix("Bearer ")
    client.base_url = client.base_url.copy_with(scheme="https")
    form = client.get("/ui/signin")
    assert "Secure" in form.headers["set-cookie"]
    r = client.post(
        "/ui/signin",
        data={"key": key, "csrf_token": _token_in(form.text)},
        follow_redirects=False,
    )
    assert "Secure" in r.headers["set-cookie"]


def test_sign_in_refuses_a_wrong_key_or_a_missing_token(console: TestClient) -> None:
    form = console.get("/ui/signin")
    r = console.post(
        "/ui/signin",
        data={"key": "sv_000000000000_" + "x" * 43, "csrf_token": _token_in(form.text)},
    )
    assert r.status_code == 401 and "not valid" in r.text
    assert "sv_console" not in r.headers.get("set-cookie", "")
    r = console.post("/ui/signin", data={"key": _key(console, Role.ADMIN)})
    assert r.status_code == 403 and "csrf_refused" in r.text
    bad_next = console.post(
        "/ui/signin",
        data={
            "key": _key(console, Role.ADMIN),
            "csrf_token": _token_in(console.get("/ui/signin").text),
            "next": "//evil.example/",
        },
        follow_redirects=False,
    )
    assert bad_next.headers["location"] == "/ui/speak"


def test_every_form_needs_its_csrf_token_and_this_origin(console: TestClient) -> None:
    csrf = _sign_in(console, _key(console, Role.OPERATOR))
    fields = {"text": "Hello there."}
    assert console.post("/ui/speak", data=fields).status_code == 403
    wrong = console.post("/ui/speak", data={**fields, "csrf_token": "x" * 43})
    assert wrong.status_code == 403 and "csrf_refused" in wrong.text
    other = console.post(
        "/ui/speak",
        data={**fields, "csrf_token": csrf},
        headers={"Origin": "https://evil.example"},
    )
    assert other.status_code == 403
    ok = console.post("/ui/speak", data={**fields, "csrf_token": csrf}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"].startswith("/ui/speak/")


def test_a_viewer_sees_no_submit_and_a_forged_post_is_refused(console: TestClient) -> None:
    csrf = _sign_in(console, _key(console, Role.VIEWER))
    page = console.get("/ui/speak").text
    assert 'id="speak-submit"' not in page and 'id="viewer-note"' in page
    voices = console.get("/ui/voices").text
    assert 'id="upload-form"' not in voices
    r = console.post("/ui/speak", data={"text": "Hi.", "csrf_token": csrf})
    assert r.status_code == 403 and 'data-code="forbidden"' in r.text
    assert _services(console).store.list_jobs(limit=5) == []


def test_another_tenants_job_is_not_found(console: TestClient) -> None:
    _sign_in(console, _key(console, Role.OPERATOR, "acme"))
    csrf = _token_in(console.get("/ui/speak").text)
    made = console.post(
        "/ui/speak", data={"text": "Ours.", "csrf_token": csrf}, follow_redirects=False
    )
    job_id = made.headers["location"].rsplit("/", 1)[-1]
    assert console.get(f"/ui/speak/{job_id}").status_code == 200
    _sign_in(console, _key(console, Role.OPERATOR, "globex"))
    for path in ("/ui/speak/{}", "/ui/jobs/{}/panel", "/ui/jobs/{}/download"):
        r = console.get(path.format(job_id))
        assert r.status_code == 404 and "job_not_found" in r.text, path


def test_the_session_cookie_is_no_api_key(console: TestClient) -> None:
    _sign_in(console, _key(console, Role.ADMIN))
    assert console.get("/v1/jobs").status_code == 401


def test_sign_out_and_revocation_end_the_session(console: TestClient) -> None:
    key = _key(console, Role.OPERATOR)
    csrf = _sign_in(console, key)
    r = console.post("/ui/signout", data={"csrf_token": csrf}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/ui/signin")
    gone = console.get("/ui/speak", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/ui/signin")
    csrf = _sign_in(console, key)
    services = _services(console)
    services.keys.revoke(services.keys.check(key).id, by="test")
    assert console.get("/ui/speak", follow_redirects=False).status_code == 303
    late = console.post("/ui/speak", data={"text": "Hi.", "csrf_token": csrf})
    assert late.status_code == 401 and "session_ended" in late.text


def test_console_calls_count_against_the_key_rate_limit(console: TestClient) -> None:
    _sign_in(console, _key(console, Role.VIEWER, rate_per_minute=3))
    statuses = [console.get("/ui/voices").status_code for _ in range(4)]
    assert statuses[-1] == 429, statuses
    assert "Retry-After" in console.get("/ui/voices").headers


def test_console_actions_are_in_the_audit_log(console: TestClient) -> None:
    key = _key(console, Role.OPERATOR)
    csrf = _sign_in(console, key)
    console.post("/ui/speak", data={"text": "Audited.", "csrf_token": csrf})
    console.post("/ui/speak", data={"text": "Forged."})  # no token
    key_id = _services(console).keys.check(key).id
    events = _services(console).audit.query(AuditQuery(key_id=key_id, limit=10))
    seen = {(e.action, e.outcome, e.route) for e in events}
    assert ("console.signin", "ok", "/ui/signin") in seen
    assert ("job.create", "ok", "/ui/speak") in seen
    assert ("job.create", "csrf_refused", "/ui/speak") in seen


def test_sessions_end_when_idle_and_at_their_absolute_limit() -> None:
    now = [1000.0]
    limits = ConsoleSettings(session_idle_seconds=60, session_max_seconds=150)
    sessions = MemorySessions(limits, clock=lambda: now[0])
    token, _ = sessions.start("key_000000000001")
    for _ in range(2):  # used every 50 s: the idle clock restarts
        now[0] += 50
        assert sessions.find(token) is not None
    now[0] += 51  # 151 s since sign-in
    assert sessions.find(token) is None
    idle, _ = sessions.start("key_000000000001")
    now[0] += 61
    assert sessions.find(idle) is None
    assert sessions.find("no-such-token") is None and len(sessions) == 0
