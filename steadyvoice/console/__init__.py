"""The web console under ``/ui/``: server-rendered pages over the same services as the API.

:func:`install` adds its routes and static assets to the app and returns what
:class:`~steadyvoice.console.access.ConsoleAccessMiddleware` needs; the app factory adds that
middleware just outside the API's own access middleware. Each page is one module with one
``router`` (listed in ``ROUTERS``) and its templates under ``templates/``; see docs/ui.md.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from steadyvoice.api.deps import Services
from steadyvoice.console import admin, batches, jobs, record, service, signin, speak, voices
from steadyvoice.console.access import STATIC_PREFIX, ConsoleAccessMiddleware
from steadyvoice.console.db_sessions import DatabaseSessions
from steadyvoice.console.deps import Console
from steadyvoice.security.ratelimit import FailedAuthLimit

__all__ = ["ROUTERS", "Console", "ConsoleAccessMiddleware", "install"]

# One router per page module; a new page adds its module here.
ROUTERS = (
    signin.router,
    speak.router,
    voices.router,
    jobs.router,
    record.router,
    batches.router,
    service.router,
    admin.router,
)


def install(app: FastAPI, services: Services) -> Console:
    """Add the console's pages and assets to ``app``; keep its state on ``app.state``."""
    settings = services.settings
    console = Console(
        sessions=DatabaseSessions(services.store, settings.console),
        failures=FailedAuthLimit(services.limiter, settings.security.failed_auth_per_minute),
    )
    app.state.console = console
    for router in ROUTERS:
        app.include_router(router)
    static = StaticFiles(packages=[("steadyvoice.console", "static")])
    app.mount(STATIC_PREFIX.rstrip("/"), static, name="console-static")
    return console
