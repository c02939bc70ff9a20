"""Console sessions in the job store's database, so every API process behind one address
shares them (the PostgreSQL topology runs several).

A request reads its session's row; it writes only when the last-use time it keeps has moved
by more than :data:`TOUCH_SECONDS` (or a tenth of the idle limit, if that is shorter), so a
page and its assets cost one indexed read each, not a write. The idle clock may therefore
end a session up to that long early; never late. Expired rows are deleted when found and,
on every sign-in, all at once (one indexed DELETE), so abandoned sessions do not pile up.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, delete, func, or_, select, update

from steadyvoice.console.session_models import ConsoleSessionRow
from steadyvoice.console.sessions import ConsoleSession, token_digest
from steadyvoice.jobs.store import JobStore
from steadyvoice.settings import ConsoleSettings

TOUCH_SECONDS = 60.0


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class DatabaseSessions:
    """Sessions in ``console_sessions``, ended by idle and absolute expiry."""

    def __init__(
        self, store: JobStore, limits: ConsoleSettings, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._idle = limits.session_idle_seconds
        self._max = limits.session_max_seconds
        self._touch = min(TOUCH_SECONDS, self._idle / 10)
        self._clock = clock

    def start(self, key_id: str) -> tuple[str, ConsoleSession]:
        token = secrets.token_urlsafe(32)
        now = self._clock()
        session = ConsoleSession(key_id, secrets.token_urlsafe(32), now, now)
        with self._store.session() as s:
            s.execute(delete(ConsoleSessionRow).where(self._expired(now)))
            s.add(
                ConsoleSessionRow(
                    token_sha256=token_digest(token),
                    key_id=key_id,
                    csrf=session.csrf,
                    started_at=_at(now),
                    seen_at=_at(now),
                    expires_at=_at(now + self._max),
                )
            )
        return token, session

    def find(self, token: str, *, touch: bool = True) -> ConsoleSession | None:
        digest = token_digest(token)
        now = self._clock()
        with self._store.reading() as s:
            row = s.get(ConsoleSessionRow, digest)
        if row is None:
            return None
        seen = row.seen_at.timestamp()
        if now - seen > self._idle or now >= row.expires_at.timestamp():
            self.end(token)
            return None
        if touch and now - seen > self._touch:
            with self._store.session() as s:
                s.execute(
                    update(ConsoleSessionRow)
                    .where(ConsoleSessionRow.token_sha256 == digest)
                    .values(seen_at=_at(now))
                )
            seen = now
        return ConsoleSession(row.key_id, row.csrf, row.started_at.timestamp(), seen)

    def end(self, token: str) -> None:
        with self._store.session() as s:
            s.execute(
                delete(ConsoleSessionRow).where(
                    ConsoleSessionRow.token_sha256 == token_digest(token)
                )
            )

    def sweep(self) -> int:
        """Delete every expired session; how many there were."""
        with self._store.session() as s:
            gone = s.execute(delete(ConsoleSessionRow).where(self._expired(self._clock())))
        return int(getattr(gone, "rowcount", 0) or 0)

    def __len__(self) -> int:
        with self._store.reading() as s:
            return int(s.scalar(select(func.count()).select_from(ConsoleSessionRow)) or 0)

    def _expired(self, now: float) -> ColumnElement[bool]:
        return or_(
            ConsoleSessionRow.expires_at <= _at(now),
            ConsoleSessionRow.seen_at < _at(now - self._idle),
        )
