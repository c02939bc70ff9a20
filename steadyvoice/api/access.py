"""Authentication, roles and per-key rate limits, checked before routing and body parsing.

Runs as ASGI middleware so that a caller without a valid key learns nothing else: not whether
the body was valid, not whether the route exists, and sends no upload first. Before any key is
looked up, a request with two ``Authorization`` headers is refused (400), and so is a client
address with too many refused keys this minute (429).
"""

from __future__ import annotations

import logging

import anyio
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError
from starlette.types import ASGIApp, Receive, Scope, Send

from steadyvoice.api.errors import domain_response
from steadyvoice.api.key_gate import KeyGate
from steadyvoice.api.policy import CallState, Policies, RoutePolicy, call_state
from steadyvoice.errors import (
    DuplicateAuthorization,
    Forbidden,
    KeyRevoked,
    SteadyVoiceError,
    StoreUnavailable,
    Unauthenticated,
)
from steadyvoice.observability import metrics
from steadyvoice.security.keys import KeyStore, token_from_header
from steadyvoice.security.principal import Principal, Role
from steadyvoice.security.ratelimit import FailedAuthLimit, RateLimiter

log = logging.getLogger("steadyvoice.api")

KEY_CHECK_THREADS = 16
CHECKS_PER_KEY = 2


class AccessMiddleware:
    """Every route but the open probes needs a valid key of a sufficient role, within limits."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        api: FastAPI,
        keys: KeyStore,
        limiter: RateLimiter,
        failures: FailedAuthLimit,
        docs_open: bool = False,
    ) -> None:
        self.app = app
        self._policies = Policies(api, docs_open)
        self._keys = keys
        self._limiter = limiter
        self._failures = failures
        # Key checks run in a lane of their own, never behind the default thread pool's
        # tokens that file reads, audit rows and job queries hold in a burst.
        self._lane = anyio.CapacityLimiter(KEY_CHECK_THREADS)
        self._gate = KeyGate(CHECKS_PER_KEY)  # and no one key fills the lane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The console's pages were admitted (or refused) by their session already.
        if scope["type"] != "http" or call_state(scope).console:
            await self.app(scope, receive, send)
            return
        state = call_state(scope)
        state.policy = policy = self._policies.resolve(scope)
        if policy.role is not None:
            client = scope.get("client")
            address = client[0] if client else None
            try:
                header = _authorization(scope)
                # One key's turns; calls without a key take theirs per client address.
                async with self._gate.turn(header or f"\x00{address}"):  # NUL: no header has it
                    state.principal = await anyio.to_thread.run_sync(
                        self._admit, header, policy, state, address, limiter=self._lane
                    )
            except SteadyVoiceError as exc:
                metrics.observe_auth_refusal(exc.code)
                refusal = domain_response(exc)
                if isinstance(exc, Unauthenticated):
                    refusal.headers["WWW-Authenticate"] = _challenge(exc)
                await refusal(scope, receive, send)
                return
            except OperationalError:
                log.error("job store unavailable while checking a key")
                down = StoreUnavailable("the job store is unreachable; nothing was done, retry")
                await domain_response(down)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _admit(
        self, header: str, policy: RoutePolicy, state: CallState, address: str | None
    ) -> Principal:
        self._failures.check(address)
        try:
            record = self._keys.check(token_from_header(header))
        except Unauthenticated as exc:
            if isinstance(exc, KeyRevoked):
                state.key_id = exc.details.get("key_id")
            self._failures.failed(address)
            raise
        state.key_id = record.id
        principal = state.principal = self._keys.principal_of(record)
        self._limiter.hit(principal.key_id, principal.rate_per_minute)
        assert policy.role is not None
        check_role(principal, policy.role)
        return principal


def check_role(principal: Principal, needed: Role) -> None:
    """``forbidden`` (403) unless the caller's role is ``needed`` or above (the console too)."""
    if not principal.may(needed):
        raise Forbidden(
            f"a {principal.role.value} key may not call this route; "
            f"it needs {needed.value} or above",
            role=principal.role.value,
            needed=needed.value,
        )


def _authorization(scope: Scope) -> str:
    """The request's one ``Authorization`` header ('' if none); two or more are refused."""
    found = [value for name, value in scope["headers"] if name == b"authorization"]
    if len(found) > 1:
        raise DuplicateAuthorization(
            f"the request carries {len(found)} Authorization headers; send exactly one",
            count=len(found),
        )
    return found[0].decode("latin-1") if found else ""


def _challenge(exc: Unauthenticated) -> str:
    """RFC 6750: a missing key gets the bare challenge, a bad one ``invalid_token``."""
    if exc.code == Unauthenticated.code:
        return 'Bearer realm="steadyvoice"'
    return 'Bearer realm="steadyvoice", error="invalid_token"'
