"""Values typed into console forms and query strings, checked before anything uses them.

Each parser accepts exactly what its message asks for and raises ``invalid_request`` naming
the field for anything else, so a page answers 422 with the form again, never a 500. The
checks are ASCII on purpose: ``"²".isdigit()`` is true yet ``int("²")`` fails, and
``date.fromisoformat`` takes week dates and compact forms the help text does not promise.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

from steadyvoice.errors import InvalidRequest

_DIGITS = re.compile(r"[0-9]+")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# The last day has no next midnight (``date.max + 1 day`` overflows), so a day filter stops
# the day before: a range "to" it would end past anything stored anyway.
LAST_DAY = date.max - timedelta(days=1)


def whole_number(value: str, field: str, *, max_digits: int = 18) -> int:
    """``value`` as a non-negative whole number of at most ``max_digits`` ASCII digits."""
    value = value.strip()
    if not (_DIGITS.fullmatch(value) and len(value) <= max_digits):
        raise InvalidRequest(f"{field} must be a whole number (digits 0-9 only)", field=field)
    return int(value)


def day(value: str | None, field: str) -> date | None:
    """A whole UTC day, ``YYYY-MM-DD`` (None or '' for no day)."""
    if not value:
        return None
    try:
        found = date.fromisoformat(value) if _DAY.fullmatch(value) else None
    except ValueError:
        found = None
    if found is None or found > LAST_DAY:
        raise InvalidRequest(
            f"{field} must be a date, YYYY-MM-DD, no later than {LAST_DAY.isoformat()}",
            field=field,
        )
    return found


def day_start(found: date) -> datetime:
    """The UTC midnight that starts ``found``."""
    return datetime.combine(found, time.min, tzinfo=UTC)


def day_end(found: date) -> datetime:
    """The UTC midnight that ends ``found`` (exclusive), for a range that includes the day."""
    return day_start(found) + timedelta(days=1)
