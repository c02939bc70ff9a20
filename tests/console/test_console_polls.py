"""A page's own polls (console.js marks them X-Console-Poll: 1) do not restart the session's
idle clock: a page left open lets its session idle out. They still need a live session."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from pages_client import new_key, services_of, sign_in  # type: ignore[import-not-found]
from sqlalchemy import select, update

from steadyvoice.console.access import POLL_HEADER
from steadyvoice.console.session_models import ConsoleSessionRow
from steadyvoice.console.sessions import MemorySessions
from steadyvoice.security.keys import NewKey
from steadyvoice.security.principal import Role
from steadyvoice.settings import ConsoleSettings

POLL = {"X-Console-Poll": "1"}


def _seen_at_moved_back(client: TestClient, seconds: float) -> float:
    """Pretend the session was last used ``seconds`` ago; its new seen_at (epoch s)."""
    store = services_of(client).store
    with store.session() as s:
        row = s.scalars(select(ConsoleSessionRow)).one()
        back = row.seen_at - timedelta(seconds=seconds)
        s.execute(update(ConsoleSessionRow).values(seen_at=back))
    return back.timestamp()


def _seen_at(client: TestClient) -> float:
    with services_of(client).store.reading() as s:
        return s.scalars(select(ConsoleSessionRow)).one().seen_at.timestamp()


def test_polls_do_not_keep_a_session_alive(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory(console={"session_idle_seconds": 600})
    sign_in(client, new_key(client, Role.VIEWER, "default"))

    before = _seen_at_moved_back(client, 120)  # past the touch interval (60 s)
    assert client.get("/ui/record", headers=POLL).status_code == 200
    assert _seen_at(client) == before  # a poll: the idle clock runs on
    assert client.get("/ui/record").status_code == 200
    assert _seen_at(client) > before + 100  # a person's request restarts it

    _seen_at_moved_back(client, 601)
    ended = client.get("/ui/record", headers=POLL, follow_redirects=False)
    assert ended.status_code == 303 and ended.headers["location"].startswith("/ui/signin")


def test_memory_sessions_find_without_touching() -> None:
    now = [1000.0]
    sessions = MemorySessions(ConsoleSettings(session_idle_seconds=60), clock=lambda: now[0])
    token, _ = sessions.start("key_000000000001")
    for _ in range(2):
        now[0] += 25
        assert sessions.find(token, touch=False) is not None
    now[0] += 11  # 61 s with only polls
    assert sessions.find(token, touch=False) is None


def test_polls_count_against_the_key_and_say_when_to_retry(
    client_factory: Callable[..., TestClient],
) -> None:
    client = client_factory()
    new = NewKey(Role.VIEWER, "default", rate_per_minute=3)
    sign_in(client, services_of(client).keys.create(new, by="test").token)
    answers = [client.get("/ui/record", headers=POLL) for _ in range(4)]
    limited = answers[-1]
    assert limited.status_code == 429 and float(limited.headers["retry-after"]) > 0


def test_console_js_marks_its_polls_and_spaces_them(
    client_factory: Callable[..., TestClient],
) -> None:
    js = client_factory().get("/ui/static/js/console.js").text
    assert POLL_HEADER.decode() == "x-console-poll" and '"X-Console-Poll": "1"' in js
    assert "const FIRST_MS = 2000;" in js and "const MAX_MS = 10000;" in js
    assert "Retry-After" in js and "Live updates paused" in js
