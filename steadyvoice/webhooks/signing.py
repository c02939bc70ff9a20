"""The signature on every callback: ``Steadyvoice-Signature: t=<unix seconds>,v1=<hex>``.

``v1`` is HMAC-SHA256, keyed with the tenant's secret (``webhooks.secrets``), of
``f"{t}.{body}"``: the timestamp is signed with the body, so a receiver that refuses old
timestamps (``verify``'s ``tolerance``) cannot be replayed a captured call later. Each attempt
is signed afresh with its own time.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Steadyvoice-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """True if ``header`` signs ``body`` with ``secret`` within ``tolerance`` seconds of now.

    What a receiver runs (docs/webhooks.md shows the same in a few lines of any language).
    """
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).rsplit("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))
