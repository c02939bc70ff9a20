"""Refusals of callers without a valid key, folded: at most two audit rows per client address,
reason and clock minute, instead of one row per call.

The first refusal of an (address, reason, minute) is written at once, as any audit row, so an
attack is on record the moment it starts and no crash can hide it. The repeats in that minute
are counted in memory and written as one row whose ``count`` says how many calls it stands for,
when the minute has closed (on the next refusal or the next sweep) or when the process stops.
Summing ``count`` gives the number of calls. A crash loses the repeat counts not yet written
(at most the current and the last minute's), never a first occurrence. Each API process folds
its own refusals, so with N processes an (address, reason, minute) has up to 2N rows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from steadyvoice.security.audit import AuditEntry, AuditLog
from steadyvoice.security.ratelimit import address_unit

log = logging.getLogger("steadyvoice.audit")

MINUTE = 60
# Repeats held in memory before they are written anyway (an address-spraying flood); a minute
# then has more than one repeats row for the same address and reason.
MAX_PENDING = 10_000
MIXED = "*"  # a field whose value differed between the folded calls

GroupKey = tuple[int, str | None, str, int]


@dataclass
class _Repeats:
    """The calls after the first of one (minute, address, reason, status)."""

    entry: AuditEntry  # the first repeat, with the fields that later ones changed set to MIXED
    count: int = 1

    def add(self, entry: AuditEntry) -> None:
        self.count += 1
        e = self.entry
        if (e.action, e.method, e.route) != (entry.action, entry.method, entry.route):
            e = replace(
                e,
                action=_same(e.action, entry.action),
                method=_same(e.method, entry.method),
                route=_same(e.route, entry.route),
            )
        if e.key_id != entry.key_id or e.object_id != entry.object_id:
            e = replace(
                e,
                key_id=e.key_id if e.key_id == entry.key_id else None,
                object_id=e.object_id if e.object_id == entry.object_id else None,
            )
        self.entry = e

    def row(self) -> AuditEntry:
        return replace(self.entry, count=self.count)


def _same(kept: str, new: str) -> str:
    return kept if kept == new else MIXED


class RefusalFolder:
    """Decides which refusals are written now, and holds the count of the rest."""

    def __init__(self, audit: AuditLog, clock: Callable[[], float] = time.time) -> None:
        self._audit = audit
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: set[GroupKey] = set()  # groups whose first refusal is written
        self._repeats: dict[GroupKey, _Repeats] = {}
        self._minute = 0  # the newest minute a refusal was seen in

    def record(self, entry: AuditEntry) -> None:
        """Write ``entry`` if it is the first of its group this minute, else count it; then
        write the repeats of minutes that have closed. Runs off the event loop."""
        now = self._clock()
        # One client is one address, or one IPv6 /64 (as the failed-auth limit counts): a
        # client that takes a new address of its /64 for every call still folds.
        unit = address_unit(entry.client) if entry.client else entry.client
        key: GroupKey = (int(now // MINUTE), unit, entry.outcome, entry.status)
        stamped = replace(entry, at=datetime.fromtimestamp(now, UTC))
        with self._lock:
            first = key not in self._seen
            if first:
                self._seen.add(key)
            elif key in self._repeats:
                self._repeats[key].add(replace(stamped, client=unit))
            else:
                self._repeats[key] = _Repeats(replace(stamped, client=unit))
            overflow = len(self._repeats) + len(self._seen) > MAX_PENDING
            closed = key[0] > self._minute  # a new minute: the last one's repeats are due
            self._minute = max(self._minute, key[0])
        if first:
            try:
                self._audit.record(stamped)
            except Exception:
                with self._lock:  # not written: the next refusal of the group is the first
                    self._seen.discard(key)
                raise
        if overflow or closed:
            self.flush(everything=overflow)

    def flush(self, *, everything: bool = False) -> int:
        """Write the repeats of closed minutes (all of them with ``everything``, as at
        shutdown); returns how many rows were written."""
        current = int(self._clock() // MINUTE)
        with self._lock:
            done = [k for k in self._repeats if everything or k[0] < current]
            rows = [self._repeats.pop(k).row() for k in done]
            self._seen = {k for k in self._seen if k[0] >= current and not everything}
        if rows:
            try:
                self._audit.record_many(rows)
            except Exception:
                self._restore(dict(zip(done, rows, strict=True)))
                raise
        return len(rows)

    def close(self) -> None:
        """Write every count held, as the process stops; a failure is logged, not raised."""
        try:
            self.flush(everything=True)
        except Exception:
            log.exception("could not write the folded refusals", extra={"lost": self.pending})

    def _restore(self, rows: dict[GroupKey, AuditEntry]) -> None:
        """Keep counts a failed write could not record, for the next flush."""
        with self._lock:
            for key, row in rows.items():
                held = self._repeats.get(key)
                if held is None:
                    self._repeats[key] = _Repeats(replace(row, count=1), row.count)
                else:
                    held.count += row.count

    @property
    def pending(self) -> int:
        """Calls counted and not yet written."""
        with self._lock:
            return sum(r.count for r in self._repeats.values())
