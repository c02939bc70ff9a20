"""API keys: made once, shown once, stored only as a SHA-256, checked in constant time.

A key reads ``sv_<12 hex id>_<43 url-safe chars>``. The id part is the key's public id (its
prefix is safe to log and show); the rest is 256 random bits. Because the secret is random and
long, a plain SHA-256 is as strong as a keyed or slow hash here, and every API host can check
keys without sharing a server secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.orm import Session

from steadyvoice.errors import (
    InvalidKey,
    InvalidRequest,
    KeyNotFound,
    KeyRevoked,
    LastAdminKey,
    Unauthenticated,
)
from steadyvoice.jobs.database import newest_first
from steadyvoice.jobs.models import utcnow
from steadyvoice.jobs.store import JobStore
from steadyvoice.security.models import ApiKey
from steadyvoice.security.principal import DEFAULT_TENANT, TENANT_NAME, Principal, Role
from steadyvoice.settings import SecuritySettings

TOKEN = re.compile(r"^sv_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
KEY_ID = re.compile(r"^key_[0-9a-f]{12}$")
BEARER = "bearer "
_BOOTSTRAP_LOCK_ID = 0x5736_0004
# What an unknown id is compared against: as long as a real digest, matched by no token.
NO_DIGEST = "-" * 64
# The key's digest, or NO_DIGEST: one row, one value, whether the key exists or not.
_DIGEST = select(
    func.coalesce(
        select(ApiKey.secret_sha256).where(ApiKey.id == bindparam("key_id")).scalar_subquery(),
        NO_DIGEST,
    )
)


@dataclass(frozen=True)
class NewKey:
    """What ``keys create`` asks for."""

    role: Role
    tenant: str
    name: str = ""
    rate_per_minute: int | None = None
    max_in_flight: int | None = None


@dataclass(frozen=True)
class IssuedKey:
    """A key just made: ``token`` exists only here and is never stored."""

    record: ApiKey
    token: str


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def verify(expected: str, token: str) -> bool:
    """Whether ``token`` hashes to ``expected``, in time that does not depend on either."""
    return hmac.compare_digest(expected.encode(), digest(token).encode())


def token_from_header(value: str | None) -> str:
    """The key in an ``Authorization: Bearer ...`` header; ``auth_required`` if there is none."""
    if not value:
        raise Unauthenticated(
            "this route needs an API key: send 'Authorization: Bearer sv_...'",
        )
    if not value.lower().startswith(BEARER):
        raise InvalidKey("the Authorization header must be 'Bearer <key>'")
    return value[len(BEARER) :].strip()


class KeyStore:
    """The ``api_keys`` table, through the job store's connections."""

    def __init__(self, store: JobStore, limits: SecuritySettings) -> None:
        self._store = store
        self._limits = limits

    def create(self, new: NewKey, by: str) -> IssuedKey:
        _check_new(new)
        with self._store.session() as s:
            return _insert(s, new, by)

    def create_first_admin(self, by: str) -> IssuedKey | None:
        """An admin key for tenant ``default`` if the table is empty, else ``None``.

        Safe when several API processes start at once: only one of them makes the key.
        """
        with self._store.session() as s:
            if s.get_bind().dialect.name == "postgresql":
                s.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _BOOTSTRAP_LOCK_ID})
            if s.scalar(select(func.count()).select_from(ApiKey)):
                return None
            return _insert(s, NewKey(Role.ADMIN, DEFAULT_TENANT, "bootstrap admin"), by)

    def authenticate(self, token: str) -> Principal:
        """The caller a key belongs to: ``invalid_key`` / ``key_revoked`` otherwise."""
        return self.principal_of(self.check(token))

    def check(self, token: str) -> ApiKey:
        """The key's row if the token is right; raises ``invalid_key`` / ``key_revoked``.

        Whether the id exists or not, and whatever the token looks like, a wrong token costs
        the same: one query that always returns one hash (the key's, or a stand-in of the same
        length) and one :func:`verify`. Only a right secret loads the key's row: a row with
        real values costs more to read than an empty one, which timing would show.
        """
        found = TOKEN.fullmatch(token)
        key_id = f"key_{found.group(1)}" if found else ""
        with self._store.reading() as s:
            # Core, not the ORM: half the cost, on every request that carries a key.
            expected = str(s.connection().execute(_DIGEST, {"key_id": key_id}).scalar_one())
            right = verify(expected, token) and found is not None
            record = s.get(ApiKey, key_id) if right else None
        if record is None:
            raise InvalidKey("the API key is not valid")
        if record.revoked_at is not None:
            raise KeyRevoked(f"the API key {record.prefix}... was revoked", key_id=record.id)
        return record

    def principal_of(self, record: ApiKey) -> Principal:
        return Principal(
            key_id=record.id,
            tenant=record.tenant,
            role=Role(record.role),
            rate_per_minute=record.rate_per_minute or self._limits.rate_per_minute,
            max_in_flight=record.max_in_flight or self._limits.max_in_flight,
        )

    def find(self, key_id: str) -> ApiKey | None:
        if not KEY_ID.fullmatch(key_id):
            return None
        with self._store.reading() as s:
            return s.get(ApiKey, key_id)

    def get(self, key_id: str) -> ApiKey:
        record = self.find(key_id)
        if record is None:
            raise KeyNotFound(f"no key {key_id!r}", key_id=key_id)
        return record

    def list_keys(
        self,
        *,
        tenant: str | None = None,
        include_revoked: bool = False,
        before: tuple[datetime, str] | None = None,
        limit: int = 100,
    ) -> list[ApiKey]:
        q = newest_first(select(ApiKey), ApiKey.created_at, ApiKey.id, before, limit)
        if tenant is not None:
            q = q.where(ApiKey.tenant == tenant)
        if not include_revoked:
            q = q.where(ApiKey.revoked_at.is_(None))
        with self._store.reading() as s:
            return list(s.scalars(q))

    def revoke(self, key_id: str, by: str) -> ApiKey:
        """Revoke at once (every API process sees it on the next request). Repeats are no-ops.

        The last active admin key cannot be revoked: make another first.
        """
        record = self.get(key_id)
        if record.revoked_at is not None:
            return record
        with self._store.session() as s:
            if record.role == Role.ADMIN.value and len(_active_admins(s)) <= 1:
                raise LastAdminKey(
                    "this is the last active admin key; create another admin key first",
                    key_id=key_id,
                )
            s.execute(
                update(ApiKey)
                .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
                .values(revoked_at=utcnow(), revoked_by=by)
            )
        return self.get(key_id)

    def count(self) -> int:
        with self._store.reading() as s:
            return int(s.scalar(select(func.count()).select_from(ApiKey)) or 0)


def _insert(s: Session, new: NewKey, by: str) -> IssuedKey:
    public = secrets.token_hex(6)
    token = f"sv_{public}_{secrets.token_urlsafe(32)}"
    record = ApiKey(
        id=f"key_{public}",
        prefix=f"sv_{public}",
        secret_sha256=digest(token),
        name=new.name.strip(),
        role=new.role.value,
        tenant=new.tenant,
        rate_per_minute=new.rate_per_minute,
        max_in_flight=new.max_in_flight,
        created_at=utcnow(),
        created_by=by,
    )
    s.add(record)
    return IssuedKey(record, token)


def _active_admins(s: Session) -> list[str]:
    """Ids of the active admin keys, locked (on PostgreSQL) until the transaction ends."""
    q = select(ApiKey.id).where(ApiKey.role == Role.ADMIN.value, ApiKey.revoked_at.is_(None))
    return list(s.scalars(q.with_for_update()))


def _check_new(new: NewKey) -> None:
    if not TENANT_NAME.fullmatch(new.tenant):
        raise InvalidRequest(
            "tenant must be 1-64 characters: lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            field="tenant",
        )
    if len(new.name) > 200 or any(ord(c) < 32 for c in new.name):
        raise InvalidRequest("name must be at most 200 printable characters", field="name")
    limits = (("rate_per_minute", new.rate_per_minute), ("max_in_flight", new.max_in_flight))
    for field, value in limits:
        if value is not None and not 1 <= value <= 1_000_000:
            raise InvalidRequest(f"{field} must be between 1 and 1000000", field=field)
