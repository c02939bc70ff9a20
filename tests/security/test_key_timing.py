"""A wrong key costs the same whether its id exists or not: same queries, same verification.

Deterministic, not timed: the test counts what each path does. The timings themselves are in
bench/key_check.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from steadyvoice.errors import InvalidKey
from steadyvoice.jobs.store import JobStore
from steadyvoice.security import keys as keys_module
from steadyvoice.security.keys import KeyStore, NewKey
from steadyvoice.security.principal import DEFAULT_TENANT, Role
from steadyvoice.settings import SecuritySettings


class Work:
    """What one check did: its SQL statements and its calls to ``verify``."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.verified: list[tuple[int, int]] = []  # (len(expected), len(token))

    def reset(self) -> None:
        self.statements.clear()
        self.verified.clear()


@pytest.fixture
def work(store: JobStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[Work]:
    seen = Work()
    real_verify = keys_module.verify

    def spy(expected: str, token: str) -> bool:
        seen.verified.append((len(expected), len(token)))
        return real_verify(expected, token)

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if not sql.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "SET")):
            seen.statements.append(sql)

    monkeypatch.setattr(keys_module, "verify", spy)
    event.listen(store.engine, "before_cursor_execute", statement)
    yield seen
    event.remove(store.engine, "before_cursor_execute", statement)


def _wrong(keys: KeyStore, token: str, work: Work) -> tuple[list[str], list[tuple[int, int]]]:
    work.reset()
    with pytest.raises(InvalidKey):
        keys.check(token)
    return list(work.statements), list(work.verified)


def test_unknown_id_and_wrong_secret_do_the_same_work(store: JobStore, work: Work) -> None:
    keys = KeyStore(store, SecuritySettings())
    issued = keys.create(NewKey(Role.VIEWER, DEFAULT_TENANT, "probe target"), by="test")
    real_id, secret = issued.token.split("_")[1], issued.token.split("_", 2)[2]
    other_secret = ("A" if secret[0] != "A" else "B") + secret[1:]
    unknown_id = "0" * 12 if real_id != "0" * 12 else "1" * 12

    known_wrong = _wrong(keys, f"sv_{real_id}_{other_secret}", work)
    unknown = _wrong(keys, f"sv_{unknown_id}_{secret}", work)
    malformed = _wrong(keys, "sv_not-a-key", work)

    assert known_wrong == unknown, "an unknown id and a wrong secret took different paths"
    statements, verified = known_wrong
    assert len(statements) == 1, statements  # one query, returning one hash either way
    assert verified == [(64, len(issued.token))]  # one full-length comparison
    # A token of another shape runs the same query and one comparison too.
    assert len(malformed[0]) == 1 and malformed[0][0] == statements[0]
    assert len(malformed[1]) == 1 and malformed[1][0][0] == 64

    work.reset()
    assert keys.check(issued.token).id == f"key_{real_id}"
    assert work.statements[0] == statements[0], "a right key starts with the same query"
    assert work.verified == [(64, len(issued.token))]
