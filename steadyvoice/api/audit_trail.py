"""Writes the audit log: every state-changing call and every download, whatever its outcome.

Outermost of the security middleware, so refusals (401, 403, 429, 413) are recorded too. The
row is written after the response, off the event loop, in one transaction with the rows of the
calls that end with it (steadyvoice.security.audit_writer); a failed write is logged and
counted, never turned into a failed call. Refusals of callers without a valid key go through the
:class:`RefusalFolder`, which writes the first of each address, reason and minute at once and
folds the repeats into one row with a count.
"""

from __future__ import annotations

import json
import logging
import re

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from steadyvoice.api.policy import SAFE_METHODS, UNMATCHED, CallState, call_state
from steadyvoice.observability import metrics
from steadyvoice.observability.logs import request_id_var
from steadyvoice.security.audit import OK, AuditEntry, AuditLog
from steadyvoice.security.audit_writer import GroupCommit
from steadyvoice.security.refusals import RefusalFolder

log = logging.getLogger("steadyvoice.audit")

_UNPRINTABLE = re.compile(r"[^\x21-\x7e]")
_ERROR_BODY_BYTES = 4096
AUDIT_THREADS = 8  # rows in one group commit wait in these; more wait without a thread


class AuditMiddleware:
    """Records calls the policy marks: non-safe methods, and reads with an audit action."""

    def __init__(self, app: ASGIApp, audit: AuditLog, refusals: RefusalFolder) -> None:
        self.app = app
        self._audit = GroupCommit(audit)  # the rows of calls ending together: one commit
        self._refusals = refusals
        # Rows wait for their commit in threads of their own lane: a burst of calls ending
        # together must not hold the default pool's tokens that the next key check needs.
        self._lane = anyio.CapacityLimiter(AUDIT_THREADS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = call_state(scope)
        status = 500
        error_body = b""

        async def watching(message: Message) -> None:
            nonlocal status, error_body
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and status >= 400:
                error_body = (error_body + message.get("body", b""))[:_ERROR_BODY_BYTES]
            await send(message)

        try:
            await self.app(scope, receive, watching)
        finally:
            entry = _entry(scope, state, status, error_body)
            if entry is not None:
                anonymous = state.principal is None and status >= 400
                with anyio.CancelScope(shield=True):  # a row waiting for its lane is kept
                    await anyio.to_thread.run_sync(
                        self._write, entry, anonymous, limiter=self._lane
                    )

    def _write(self, entry: AuditEntry, anonymous: bool) -> None:
        try:
            if anonymous:
                self._refusals.record(entry)
            else:
                self._audit.record(entry)
        except Exception:
            log.exception("audit write failed", extra={"action": entry.action})
            metrics.observe_audit_failure()


def _entry(scope: Scope, state: CallState, status: int, error_body: bytes) -> AuditEntry | None:
    policy = state.policy
    method = scope["method"]
    if policy is None or policy.role is None:  # the open probes
        return None
    if method in SAFE_METHODS and policy.audit is None:
        return None
    principal = state.principal
    client = scope.get("client")
    return AuditEntry(
        action=policy.audit or f"{method} {policy.template}",
        outcome=OK if status < 400 else state.error_code or _error_code(error_body, status),
        status=status,
        method=method,
        route=policy.template if policy.template != UNMATCHED else UNMATCHED,
        key_id=principal.key_id if principal else state.key_id,
        tenant=principal.tenant if principal else None,
        role=principal.role.value if principal else None,
        object_id=state.object_id or _first_param(policy.path_params),
        client=client[0] if client else None,
        request_id=request_id_var.get(),
    )


def _error_code(body: bytes, status: int) -> str:
    try:
        code = json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return f"http_{status}"
    return code if isinstance(code, str) else f"http_{status}"


def _first_param(params: dict[str, object]) -> str | None:
    for value in params.values():
        return _UNPRINTABLE.sub("?", str(value))[:128]
    return None
