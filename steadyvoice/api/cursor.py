"""Opaque keyset-pagination cursors: (created_at, id) of the last item of a page."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime

from steadyvoice.errors import InvalidCursor

# Job ids are 32 hex digits, voice ids the same behind "vp_", key ids 12 behind "key_":
# nothing else reaches SQL.
_ITEM_ID = re.compile(r"(vp_)?[0-9a-f]{32}|key_[0-9a-f]{12}")
# Longer than any cursor this service hands out (an ISO time, "|", an id), in base64.
_MAX_CHARS = 200


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a client's ``cursor`` names, as a UTC time and an id; ``invalid_cursor``
    (field ``cursor``) for anything this service did not hand out, never an exception."""
    if len(cursor) > _MAX_CHARS:
        raise _invalid()
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        at, item_id = raw.split("|", 1)
        when = datetime.fromisoformat(at)
        # The store compares in UTC: 0001-01-01T00:00+05:00 or 9999-12-31T23:59-05:00 have
        # no UTC time (OverflowError).
        utc = when.astimezone(UTC) if when.tzinfo is not None else None
    except (binascii.Error, ValueError, OverflowError):  # UnicodeError is a ValueError
        raise _invalid() from None
    if utc is None or not _ITEM_ID.fullmatch(item_id):
        raise _invalid()
    return utc, item_id


def encode_cursor(at: datetime, item_id: str) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{item_id}".encode()).decode()


def _invalid() -> InvalidCursor:
    return InvalidCursor(
        "cursor is not valid; use a next_cursor this service returned", field="cursor"
    )
