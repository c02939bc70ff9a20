"""Console sessions in the database: shared by API processes, expiring, never the token in clear.

Each test runs on SQLite and PostgreSQL (``db_url``).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from pages_client import new_key, services_of, sign_in  # type: ignore[import-not-found]
from sqlalchemy import select, text

from steadyvoice.console.db_sessions import DatabaseSessions
from steadyvoice.console.session_models import ConsoleSessionRow
from steadyvoice.console.sessions import token_digest
from steadyvoice.console.visit import SESSION_COOKIE
from steadyvoice.jobs.store import JobStore
from steadyvoice.security.principal import Role
from steadyvoice.settings import ConsoleSettings

Factory = Callable[..., TestClient]


def _rows(store: JobStore) -> list[ConsoleSessionRow]:
    with store.reading() as s:
        return list(s.scalars(select(ConsoleSessionRow)))


def test_a_session_from_one_api_process_is_good_on_another(
    db_url: str, client_factory: Factory
) -> None:
    first, second = client_factory(database_url=db_url), client_factory(database_url=db_url)
    key = new_key(first, Role.OPERATOR, "default")
    csrf = sign_in(first, key)
    cookie = first.cookies[SESSION_COOKIE]
    second.headers.pop("Authorization", None)
    second.cookies.set(SESSION_COOKIE, cookie, path="/ui")
    page = second.get("/ui/record", follow_redirects=False)
    assert page.status_code == 200 and csrf in page.text

    # The table holds the token's digest, never the token.
    store = services_of(first).store
    rows = _rows(store)
    assert [r.token_sha256 for r in rows] == [token_digest(cookie)]
    with store.engine.connect() as conn:
        dump = repr(conn.execute(text("SELECT * FROM console_sessions")).all())
    assert cookie not in dump

    # Signing out on the second ends it on the first too: the row is gone.
    out = second.post("/ui/signout", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303, out.text
    assert _rows(store) == []
    again = first.get("/ui/record", follow_redirects=False)
    assert again.status_code == 303 and "/ui/signin" in again.headers["location"]


def test_a_revoked_key_ends_its_session_on_every_process(
    db_url: str, client_factory: Factory
) -> None:
    first, second = client_factory(database_url=db_url), client_factory(database_url=db_url)
    key = new_key(first, Role.VIEWER, "default")
    sign_in(first, key)
    second.headers.pop("Authorization", None)
    second.cookies.set(SESSION_COOKIE, first.cookies[SESSION_COOKIE], path="/ui")
    assert second.get("/ui/record", follow_redirects=False).status_code == 200
    keys = services_of(first).keys
    keys.revoke(keys.check(key).id, by="test")
    assert second.get("/ui/record", follow_redirects=False).status_code == 303
    assert _rows(services_of(first).store) == []


def test_idle_and_absolute_expiry_and_few_writes(store: JobStore) -> None:
    now = [1_000_000.0]
    limits = ConsoleSettings(session_idle_seconds=600, session_max_seconds=1500)
    sessions = DatabaseSessions(store, limits, clock=lambda: now[0])
    token, started = sessions.start("key_000000000001")
    assert sessions.find(token) == started

    # Used every 30 s: within the touch interval, last use is not written.
    now[0] += 30
    assert sessions.find(token) is not None
    assert _rows(store)[0].seen_at.timestamp() == started.seen
    # Past it (60 s), it is, once.
    now[0] += 31
    seen = sessions.find(token)
    assert seen is not None and seen.seen == now[0]
    assert _rows(store)[0].seen_at.timestamp() == now[0]

    for _ in range(3):  # used every 400 s: the idle clock restarts each time
        now[0] += 400
        assert sessions.find(token) is not None
    now[0] += 300  # 1561 s since sign-in: past the absolute limit
    assert sessions.find(token) is None
    assert _rows(store) == []

    idle, _ = sessions.start("key_000000000001")
    now[0] += 601
    assert sessions.find(idle) is None
    assert sessions.find("no-such-token") is None and len(sessions) == 0

    # Abandoned sessions are swept at the next sign-in.
    for _ in range(3):
        sessions.start("key_000000000002")
    now[0] += 601
    assert len(sessions) == 3
    sessions.start("key_000000000003")
    assert [r.key_id for r in _rows(store)] == ["key_000000000003"]
    now[0] += 601
    assert sessions.sweep() == 1 and len(sessions) == 0
