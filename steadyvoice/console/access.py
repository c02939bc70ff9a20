"""The console's door: a session cookie instead of an ``Authorization`` header, same checks.

Sits just outside the API's access middleware, for console paths only. A signed-in request
meets exactly what an API call meets: the key (looked up by id on every request, so a revoked
key is out at once), the route's least role (``allow`` on each console route), the key's rate
limit, and the audit log (the call state carries the principal and the route's policy, as
the API's middleware would leave them). It then marks the call so the API's middleware lets
it through. Nothing else accepts the cookie: the ``/v1`` API stays bearer-only, which is also
why it needs no CSRF defence.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import anyio
from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from sqlalchemy.exc import OperationalError
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from steadyvoice.api.access import check_role
from steadyvoice.api.policy import SAFE_METHODS, CallState, Policies, RoutePolicy, call_state
from steadyvoice.console.sessions import SessionStore
from steadyvoice.console.templates import error_page
from steadyvoice.console.visit import PREFIX, SESSION_COOKIE, Visit, set_visit
from steadyvoice.errors import SessionEnded, SteadyVoiceError, StoreUnavailable
from steadyvoice.observability import metrics
from steadyvoice.security.keys import KeyStore
from steadyvoice.security.ratelimit import RateLimiter

log = logging.getLogger("steadyvoice.console")

# Browsers ask every site for this on their own; answered here, it is neither a 401 nor a
# failed authentication counted against the address (which would end in auth_rate_limited).
FAVICON = "/favicon.ico"
# Reached without a session: the redirects to the console, sign-in, the icon, static assets.
OPEN_PATHS = frozenset({"/", PREFIX, f"{PREFIX}/signin", FAVICON})
STATIC_PREFIX = f"{PREFIX}/static/"
POLL_HEADER = b"x-console-poll"


def in_console(path: str) -> bool:
    return path in ("/", PREFIX, FAVICON) or path.startswith(PREFIX + "/")


def is_poll(scope: Scope) -> bool:
    """A page's own background refresh (console.js marks it), not a person's request: it
    is admitted, rate-limited and audited like any other, but does not restart the
    session's idle clock, so a page left open does not keep its session alive. The header
    can only shorten a session, so a client that sets it itself gains nothing."""
    return scope["method"] in SAFE_METHODS and (POLL_HEADER, b"1") in scope["headers"]


def cookie_value(scope: Scope, name: str) -> str:
    """One cookie of the request ('' if absent), parsed as Starlette's ``request.cookies``."""
    for key, value in scope["headers"]:
        if key == b"cookie":
            found = cookie_parser(value.decode("latin-1")).get(name)
            if found:
                return found
    return ""


class ConsoleAccessMiddleware:
    """Admits console requests by session; everything else passes untouched."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        api: FastAPI,
        sessions: SessionStore,
        keys: KeyStore,
        limiter: RateLimiter,
    ) -> None:
        self.app = app
        self._policies = Policies(api, docs_open=False)
        self._sessions = sessions
        self._keys = keys
        self._limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not in_console(scope["path"]):
            await self.app(scope, receive, send)
            return
        state = call_state(scope)
        state.console = True
        policy = self._policies.resolve(scope)
        path = scope["path"]
        if path in OPEN_PATHS or path.startswith(STATIC_PREFIX):
            state.policy = RoutePolicy(None, policy.template)
            await self.app(scope, receive, send)
            return
        state.policy = policy
        try:
            visit = await anyio.to_thread.run_sync(self._admit, scope, state, policy)
        except SessionEnded:
            await self._to_signin(scope, receive, send)
            return
        except SteadyVoiceError as exc:
            metrics.observe_auth_refusal(exc.code)
            await error_page(scope, exc)(scope, receive, send)
            return
        except OperationalError:
            log.error("job store unavailable while checking a console session")
            down = StoreUnavailable("the job store is unreachable; nothing was done, retry")
            await error_page(scope, down)(scope, receive, send)
            return
        set_visit(scope, visit)
        await self.app(scope, receive, send)

    def _admit(self, scope: Scope, state: CallState, policy: RoutePolicy) -> Visit:
        token = cookie_value(scope, SESSION_COOKIE)
        session = self._sessions.find(token, touch=not is_poll(scope)) if token else None
        if session is None:
            raise SessionEnded("your console session has ended; sign in again")
        record = self._keys.find(session.key_id)
        state.key_id = session.key_id
        if record is None or record.revoked_at is not None:
            self._sessions.end(token)
            raise SessionEnded("the key this session signed in with was revoked; sign in again")
        principal = state.principal = self._keys.principal_of(record)
        self._limiter.hit(principal.key_id, principal.rate_per_minute)
        assert policy.role is not None
        check_role(principal, policy.role)
        return Visit(token, session, principal)

    async def _to_signin(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A page asked for goes to sign-in (and back after); an action is refused (401),
        so a form posted after expiry is not silently lost, and the audit log sees it."""
        if scope["method"] in SAFE_METHODS:
            query = scope.get("query_string", b"").decode("latin-1")
            back = scope["path"] + (f"?{query}" if query else "")
            target = f"{PREFIX}/signin?next={quote(back, safe='')}"
            await RedirectResponse(target, status_code=303)(scope, receive, send)
            return
        metrics.observe_auth_refusal(SessionEnded.code)
        ended = SessionEnded("your console session has ended; sign in again")
        await error_page(scope, ended)(scope, receive, send)
