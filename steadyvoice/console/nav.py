"""The console's navigation: one entry per page, shown to the roles that may open it."""

from __future__ import annotations

from dataclasses import dataclass

from steadyvoice.console.visit import Visit
from steadyvoice.security.principal import Role


@dataclass(frozen=True)
class NavItem:
    path: str
    label: str
    role: Role  # the least role that may open the page (its route's ``allow``)


# One line per page; a page module adds its entry here (docs/ui.md).
PAGES = (
    NavItem("/ui/speak", "Speak", Role.VIEWER),
    NavItem("/ui/voices", "Voices", Role.VIEWER),
    NavItem("/ui/record", "Record", Role.VIEWER),
    NavItem("/ui/batches", "Batches", Role.VIEWER),
    NavItem("/ui/service", "Service", Role.VIEWER),
    NavItem("/ui/admin", "Admin", Role.ADMIN),
)


def nav_for(visit: Visit | None) -> list[NavItem]:
    if visit is None:
        return []
    return [item for item in PAGES if visit.principal.may(item.role)]
