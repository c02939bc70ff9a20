"""Audit rows of many calls at once written together: one transaction, one disk flush.

Each call's row is written after its answer, in a worker thread that waits until the row is
committed (a failed write is logged and counted by the caller, as before). On SQLite the rows
take turns with every other write (a rate window before each call), and each commit flushes
the disk: a burst of 48 downloads ending together made 48 flushes in a row, and a key check
arriving then waited for all of them. Here, while one transaction commits, the rows that
arrive wait for it and then go in the next one, together (group commit). A lone row is
written at once, as before.
"""

from __future__ import annotations

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from steadyvoice.security.audit import AuditEntry, AuditLog
from steadyvoice.security.group_commit import Combiner


class GroupCommit:
    """Appends rows to ``audit``; rows from threads calling :meth:`record` at once share a
    transaction. If a shared transaction fails, its rows are written one by one, so that one
    bad row costs only its own."""

    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit
        self._rows: Combiner[AuditEntry, None] = Combiner(self._write)

    def record(self, entry: AuditEntry) -> None:
        """Return once ``entry`` is committed; raise what its write raised."""
        self._rows.submit(entry)

    def _write(self, batch: list[AuditEntry]) -> list[BaseException | None]:
        try:
            self._audit.record_many(batch)
        except Exception as exc:
            if len(batch) == 1 or not _row_specific(exc):
                # The database is away (or locked): every row fails at once, with the one
                # error, instead of each waiting out its own timeout in turn.
                raise
            return [self._one(entry) for entry in batch]
        return [None] * len(batch)

    def _one(self, entry: AuditEntry) -> BaseException | None:
        try:
            self._audit.record(entry)
        except Exception as exc:  # noqa: BLE001 - raised in its caller's thread, logged there
            return exc
        return None


def _row_specific(exc: Exception) -> bool:
    """An error one bad row can cause (a constraint, a value the column refuses), worth
    retrying the rows one by one; not a lost connection or a lock timeout."""
    if isinstance(exc, IntegrityError | DataError):
        return True
    # Binding one row's values failed before the database saw it (not a DBAPI error).
    return isinstance(exc, StatementError) and not isinstance(exc, DBAPIError)
