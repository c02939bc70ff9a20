"""Opaque keyset-pagination cursors: (created_at, id) of the last item of a page."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime

from steadyvoice.errors import InvalidRequest

# Job ids are 32 hex digits, voice ids the same behind "vp_", key ids 12 behind "key_":
# nothing else reaches SQL.
_ITEM_ID = re.compile(r"(vp_)?[0-9a-f]{32}|key_[0-9a-f]{12}")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a client's ``cursor`` names; ``invalid_request`` if it was tampered with."""
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        at, item_id = raw.split("|", 1)
        when = datetime.fromisoformat(at)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidRequest("cursor is not valid", field="cursor") from None
    if when.tzinfo is None or not _ITEM_ID.fullmatch(item_id):
        raise InvalidRequest("cursor is not valid", field="cursor")
    return when, item_id


def encode_cursor(at: datetime, item_id: str) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{item_id}".encode()).decode()
