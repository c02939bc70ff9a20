"""Console sign-in sessions: a random id in an HttpOnly cookie, the session itself server-side.

The cookie holds only a 256-bit random id; the store keeps its SHA-256 (a copy of the store
gives no usable cookie), the API key id it stands for, its CSRF token and its two clocks. The
key itself is never kept: each request looks the key up by id, so a revoked key ends its
sessions at once and a changed role applies on the next page.

:class:`~steadyvoice.console.db_sessions.DatabaseSessions` (the app's store) keeps them in the
``console_sessions`` table, so every API process behind one address shares them;
:class:`MemorySessions` keeps them in one process's memory (tests, tools).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from steadyvoice.settings import ConsoleSettings


@dataclass(frozen=True)
class ConsoleSession:
    """One signed-in browser. ``started`` and ``seen`` are the store clock's seconds."""

    key_id: str
    csrf: str
    started: float
    seen: float


class SessionStore(Protocol):
    """Where sessions live; the cookie's token is the only way to one."""

    def start(self, key_id: str) -> tuple[str, ConsoleSession]:
        """A new session for ``key_id``: the cookie's token, and the session."""
        ...

    def find(self, token: str, *, touch: bool = True) -> ConsoleSession | None:
        """The live session of ``token``, or ``None``. ``touch``: note it was used now (a
        page's own poll does not, so an open page alone never keeps a session alive)."""
        ...

    def end(self, token: str) -> None:
        """Forget the session (sign-out); unknown tokens are ignored."""
        ...


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_token(expected: str, given: str) -> bool:
    """Compare secrets in time that does not depend on where they first differ."""
    return hmac.compare_digest(expected.encode(), given.encode())


class MemorySessions:
    """Sessions in this process's memory, ended by idle and absolute expiry."""

    def __init__(
        self, limits: ConsoleSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._idle = limits.session_idle_seconds
        self._max = limits.session_max_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, ConsoleSession] = {}

    def start(self, key_id: str) -> tuple[str, ConsoleSession]:
        token = secrets.token_urlsafe(32)
        now = self._clock()
        session = ConsoleSession(key_id, secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._drop_expired(now)
            self._sessions[token_digest(token)] = session
        return token, session

    def find(self, token: str, *, touch: bool = True) -> ConsoleSession | None:
        digest = token_digest(token)
        now = self._clock()
        with self._lock:
            session = self._sessions.get(digest)
            if session is None:
                return None
            if self._expired(session, now):
                del self._sessions[digest]
                return None
            if touch:
                session = self._sessions[digest] = replace(session, seen=now)
            return session

    def end(self, token: str) -> None:
        with self._lock:
            self._sessions.pop(token_digest(token), None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def _expired(self, session: ConsoleSession, now: float) -> bool:
        return now - session.seen > self._idle or now - session.started > self._max

    def _drop_expired(self, now: float) -> None:
        # On each sign-in: abandoned sessions never outlive the absolute expiry by much.
        for digest in [d for d, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[digest]
