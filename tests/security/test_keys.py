"""API keys on SQLite and PostgreSQL: format, hashes only, checks, revocation, the first admin."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from steadyvoice.errors import (
    InvalidKey,
    InvalidRequest,
    KeyNotFound,
    KeyRevoked,
    LastAdminKey,
    Unauthenticated,
)
from steadyvoice.jobs.store import JobStore
from steadyvoice.security.keys import IssuedKey, KeyStore, NewKey, token_from_header
from steadyvoice.security.principal import DEFAULT_TENANT, Role
from steadyvoice.settings import SecuritySettings, Settings

TOKEN_FORMAT = re.compile(r"^sv_(?P<public>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})$")
LIMITS = SecuritySettings(rate_per_minute=600, max_in_flight=50)


@pytest.fixture
def keys(store: JobStore) -> KeyStore:
    return KeyStore(store, LIMITS)


def _secret(token: str) -> str:
    found = TOKEN_FORMAT.fullmatch(token)
    assert found, token
    return found["secret"]


def _every_row_as_text(store: JobStore) -> list[str]:
    """Every value of every row of every table, as text."""
    values: list[str] = []
    with store.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                values += [str(v) for v in row]
    return values


def _admin(keys: KeyStore, name: str = "admin") -> IssuedKey:
    return keys.create(NewKey(Role.ADMIN, DEFAULT_TENANT, name), by="test")


def test_tokens_have_the_documented_format(keys: KeyStore) -> None:
    issued = [keys.create(NewKey(role, "acme", role.value), by="test") for role in Role]
    for key in issued:
        found = TOKEN_FORMAT.fullmatch(key.token)
        assert found, key.token
        assert key.record.id == f"key_{found['public']}"
        assert key.record.prefix == f"sv_{found['public']}"
        assert key.token.startswith(key.record.prefix + "_")
    assert len({k.token for k in issued}) == len({k.record.id for k in issued}) == 3


def test_the_database_holds_only_a_sha256_of_each_key(
    keys: KeyStore, store: JobStore, db_url: str
) -> None:
    issued = [keys.create(NewKey(Role.OPERATOR, "acme", f"k{i}"), by="test") for i in range(5)]
    issued.append(_admin(keys))
    with store.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(text("SELECT * FROM api_keys"))}
    assert set(rows) == {k.record.id for k in issued}
    for key in issued:
        assert rows[key.record.id].secret_sha256 == hashlib.sha256(key.token.encode()).hexdigest()
    stored = "\n".join(_every_row_as_text(store))
    for key in issued:
        assert key.token not in stored
        assert _secret(key.token) not in stored
        assert key.record.secret_sha256 in stored  # the dump above did read the keys
    if db_url.startswith("sqlite"):
        path = Path(db_url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        for key in issued:
            assert key.record.secret_sha256.encode() in raw
            assert key.token.encode() not in raw
            assert _secret(key.token).encode() not in raw


def test_check_accepts_only_the_right_token(keys: KeyStore) -> None:
    key = keys.create(NewKey(Role.VIEWER, "acme"), by="test")
    assert keys.check(key.token).id == key.record.id
    public = key.record.prefix
    other = keys.create(NewKey(Role.VIEWER, "acme"), by="test")
    wrong = [
        f"{public}_{_secret(other.token)}",  # another key's secret under this id
        key.token[:-1] + ("A" if key.token[-1] != "A" else "B"),  # one character off
        f"sv_{'0' * 12}_{_secret(key.token)}",  # an id that does not exist
        key.token + "x",
        key.token.upper(),
        public,
        "",
        "sv_",
        f"Bearer {key.token}",
    ]
    for token in wrong:
        with pytest.raises(InvalidKey) as caught:
            keys.check(token)
        assert caught.value.code == "invalid_key" and caught.value.status == 401, token


def test_a_revoked_key_is_refused_and_revoking_again_changes_nothing(keys: KeyStore) -> None:
    key = keys.create(NewKey(Role.OPERATOR, "acme"), by="test")
    first = keys.revoke(key.record.id, by="first")
    assert first.revoked_at is not None and first.revoked_by == "first"
    with pytest.raises(KeyRevoked) as caught:
        keys.check(key.token)
    assert caught.value.code == "key_revoked" and caught.value.status == 401
    # Without the secret, a revoked key is just an invalid one: nothing about it leaks.
    with pytest.raises(InvalidKey) as wrong:
        keys.check(key.token[:-2] + ("AA" if not key.token.endswith("AA") else "BB"))
    assert type(wrong.value) is InvalidKey
    again = keys.revoke(key.record.id, by="second")
    assert (again.revoked_at, again.revoked_by) == (first.revoked_at, "first")
    listed = {k.id for k in keys.list_keys(tenant="acme")}
    assert key.record.id not in listed
    assert key.record.id in {k.id for k in keys.list_keys(tenant="acme", include_revoked=True)}


def test_unknown_key_ids_are_not_found(keys: KeyStore) -> None:
    for key_id in ("key_000000000000", "nope", "key_' OR 1=1 --"):
        with pytest.raises(KeyNotFound) as caught:
            keys.revoke(key_id, by="test")
        assert caught.value.status == 404


def test_the_last_active_admin_key_cannot_be_revoked(keys: KeyStore) -> None:
    first = keys.create_first_admin(by="bootstrap")
    assert first is not None
    keys.create(NewKey(Role.OPERATOR, DEFAULT_TENANT), by="test")  # not an admin: no help
    with pytest.raises(LastAdminKey) as caught:
        keys.revoke(first.record.id, by="test")
    assert caught.value.code == "last_admin_key" and caught.value.status == 409
    assert keys.check(first.token).revoked_at is None
    second = _admin(keys, "second")
    keys.revoke(first.record.id, by="test")
    with pytest.raises(KeyRevoked):
        keys.check(first.token)
    with pytest.raises(LastAdminKey):
        keys.revoke(second.record.id, by="test")  # the revoked one no longer counts
    assert keys.authenticate(second.token).role is Role.ADMIN


def test_create_first_admin_only_on_an_empty_table(keys: KeyStore) -> None:
    made = keys.create_first_admin(by="bootstrap")
    assert made is not None
    assert (made.record.role, made.record.tenant) == (Role.ADMIN.value, DEFAULT_TENANT)
    assert made.record.created_by == "bootstrap"
    assert keys.create_first_admin(by="bootstrap") is None
    assert keys.count() == 1


def test_create_first_admin_does_nothing_when_any_key_exists(keys: KeyStore) -> None:
    keys.create(NewKey(Role.VIEWER, "acme"), by="cli")
    assert keys.create_first_admin(by="bootstrap") is None
    assert keys.count() == 1


def test_concurrent_first_starts_make_exactly_one_admin_key(
    store_factory: Callable[[str], JobStore], db_url: str
) -> None:
    callers = 6
    stores = [KeyStore(store_factory(db_url), LIMITS) for _ in range(callers)]
    start = threading.Barrier(callers)
    made: list[IssuedKey | None] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def first_start(keys: KeyStore) -> None:
        try:
            start.wait(timeout=30)
            issued = keys.create_first_admin(by="bootstrap")
        except BaseException as exc:  # noqa: BLE001 - reported below, with the others
            with lock:
                errors.append(exc)
            return
        with lock:
            made.append(issued)

    threads = [threading.Thread(target=first_start, args=(k,)) for k in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    winners = [m for m in made if m is not None]
    assert len(made) == callers and len(winners) == 1
    assert stores[0].count() == 1
    assert stores[0].check(winners[0].token).role == Role.ADMIN.value


def test_per_key_limits_override_the_settings(
    keys: KeyStore, store: JobStore, settings_factory: Callable[..., Settings]
) -> None:
    plain = keys.create(NewKey(Role.VIEWER, "acme"), by="test")
    tight = keys.create(
        NewKey(Role.OPERATOR, "acme", rate_per_minute=7, max_in_flight=2), by="test"
    )
    default = keys.authenticate(plain.token)
    assert (default.rate_per_minute, default.max_in_flight) == (600, 50)
    own = keys.authenticate(tight.token)
    assert (own.rate_per_minute, own.max_in_flight) == (7, 2)
    assert (own.key_id, own.tenant, own.role, own.scope) == (
        tight.record.id,
        "acme",
        Role.OPERATOR,
        "acme",
    )
    settings = settings_factory(security={"rate_per_minute": 30, "max_in_flight": 4})
    elsewhere = KeyStore(store, settings.security)
    changed = elsewhere.authenticate(plain.token)
    assert (changed.rate_per_minute, changed.max_in_flight) == (30, 4)
    assert elsewhere.authenticate(tight.token).rate_per_minute == 7


@pytest.mark.parametrize(
    ("new", "field"),
    [
        (NewKey(Role.VIEWER, "Acme"), "tenant"),
        (NewKey(Role.VIEWER, ""), "tenant"),
        (NewKey(Role.VIEWER, "a" * 65), "tenant"),
        (NewKey(Role.VIEWER, "acme", "x" * 201), "name"),
        (NewKey(Role.VIEWER, "acme", "line\nbreak"), "name"),
        (NewKey(Role.VIEWER, "acme", rate_per_minute=0), "rate_per_minute"),
        (NewKey(Role.VIEWER, "acme", max_in_flight=1_000_001), "max_in_flight"),
    ],
)
def test_create_refuses_bad_fields(keys: KeyStore, new: NewKey, field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        keys.create(new, by="test")
    assert caught.value.details["field"] == field
    assert keys.count() == 0


def test_token_from_header() -> None:
    assert token_from_header("Bearer sv_abc") == "sv_abc"
    assert token_from_header("bearer   sv_abc  ") == "sv_abc"
    with pytest.raises(InvalidKey):
        token_from_header("Basic dXNlcjpwYXNz")
    for missing in (None, ""):
        with pytest.raises(Unauthenticated) as caught:
            token_from_header(missing)
        assert caught.value.code == "auth_required"
