"""``console_sessions``: the console's sign-in sessions, shared by every API process.

Keyed by the SHA-256 of the cookie's token, never the token: a copy of the table gives no
usable cookie. The key itself is not kept either, only its id, looked up on every request.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from steadyvoice.jobs.models import Base, UTCDateTime


class ConsoleSessionRow(Base):
    """One signed-in browser: whose key, its CSRF token, and its clocks."""

    __tablename__ = "console_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), index=True)
    # Shown in every page the session sees; worthless without the cookie it belongs to.
    csrf: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Last request, to within the store's write interval (not written on every request).
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The absolute end (started_at + console.session_max_seconds); the sweep deletes by it.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
