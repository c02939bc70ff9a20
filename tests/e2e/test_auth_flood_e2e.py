"""A keyless flood against a real ``serve``: after the limit of refused keys the address gets 429
before any key lookup, the audit log grows by a bounded number of rows that still count every
call, other addresses are served as usual, and two Authorization headers get 400."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from http_checks import error_of  # type: ignore[import-not-found]
from processes import ServiceFactory, admin_key  # type: ignore[import-not-found]
from sqlalchemy import select

from steadyvoice.jobs.store import JobStore
from steadyvoice.security.models import AuditEvent

FLOOD = 500
LIMIT = 20
ATTACKER = "127.0.0.1"


@pytest.mark.timeout(180)
def test_a_keyless_flood_is_limited_and_folded(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    env = service_env(data, ENGINE="fake", SECURITY__FAILED_AUTH_PER_MINUTE=str(LIMIT))
    svc = start_service(env)
    admin = {"Authorization": f"Bearer {admin_key(data)}"}
    answers: list[tuple[int, str]] = []
    with httpx.Client(base_url=svc.url, timeout=10) as flood:
        for _ in range(FLOOD):
            r = flood.post("/v1/jobs", json={"text": "Let me in."})
            answers.append((r.status_code, r.json()["error"]["code"]))
            if r.status_code == 429:
                assert int(r.headers["Retry-After"]) >= 1
        assert answers[:LIMIT] == [(401, "auth_required")] * LIMIT
        tally = Counter(answers)
        # A flood that crosses a clock minute may see one or two more 401s as the window slides.
        assert tally[(429, "auth_rate_limited")] >= FLOOD - LIMIT - 5, tally
        assert set(tally) == {(401, "auth_required"), (429, "auth_rate_limited")}, tally

        # Even a right key waits now from this address: the check comes before any lookup.
        job = {"text": "Let me in."}
        error_of(flood.post("/v1/jobs", json=job, headers=admin), 429, "auth_rate_limited")
        twice = [("Authorization", admin["Authorization"])] * 2
        error_of(flood.post("/v1/jobs", json=job, headers=twice), 400, "duplicate_authorization")

    # Another address is served as usual, and the flood's first refusals are on record already.
    with httpx.Client(
        base_url=svc.url, timeout=10, transport=httpx.HTTPTransport(local_address="127.0.0.2")
    ) as other:
        assert other.get("/v1/me", headers=admin).status_code == 200
        page = other.get("/v1/audit", params={"limit": 100}, headers=admin)
        assert page.status_code == 200, page.text
        seen = {(i["client"], i["outcome"], i["count"]) for i in page.json()["items"]}
        assert {(ATTACKER, "auth_required", 1), (ATTACKER, "auth_rate_limited", 1)} <= seen

    assert svc.stop() == 0  # the repeats are written as the service stops
    store = JobStore.from_url(f"sqlite:///{data / 'steadyvoice.db'}", data)
    try:
        with store.reading() as s:
            rows = list(s.scalars(select(AuditEvent).where(AuditEvent.client == ATTACKER)))
    finally:
        store.engine.dispose()
    # Every call counted: the flood, the admin's refused call and the duplicate header.
    assert sum(r.count for r in rows) == FLOOD + 2
    # At most two rows per reason and clock minute (the flood may cross one boundary), where one
    # row per call would have been 502.
    reasons = {r.outcome for r in rows}
    assert reasons == {"auth_required", "auth_rate_limited", "duplicate_authorization"}
    assert len(rows) <= 2 * 2 * len(reasons), [(r.outcome, r.count, r.at) for r in rows]
