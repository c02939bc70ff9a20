"""Who is calling: roles, their order, and the authenticated caller the routes see."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_TENANT = "default"
TENANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class Role(StrEnum):
    """What a key may do. Each role may do everything the roles below it may."""

    VIEWER = "viewer"  # read its tenant's jobs, audio and voices
    OPERATOR = "operator"  # also create and cancel jobs, create and delete voices
    ADMIN = "admin"  # also every tenant, keys, the audit log and the SLO report


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class Principal:
    """An authenticated API key, as the routes see it."""

    key_id: str
    tenant: str
    role: Role
    rate_per_minute: int
    max_in_flight: int

    def may(self, needed: Role) -> bool:
        return _RANK[self.role] >= _RANK[needed]

    @property
    def scope(self) -> str | None:
        """The tenant this caller's reads are limited to; ``None`` (every tenant) for admins."""
        return None if self.role is Role.ADMIN else self.tenant
