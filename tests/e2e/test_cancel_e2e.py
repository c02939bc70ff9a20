"""Canceling a running job frees its worker at the next sentence, on a real service."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from processes import Service, ServiceFactory, poll  # type: ignore[import-not-found]

pytestmark = pytest.mark.timeout(300)

# About 4,500 characters in 82 sentences: the job that kept the only worker busy for 28 s.
LONG = " ".join(f"The quick brown fox number {n} jumps over the lazy dog." for n in range(82))
SHORT = "Thanks."
# The fake engine works 0.01 s a character: 45 s for the long text, 0.07 s for the short one.
ENGINES = {"fake": {"fake__seconds_per_char": "0.01"}, "piper": {}}


def _events(svc: Service, name: str) -> list[dict[str, Any]]:
    found = []
    for line in svc.log().splitlines():
        if f'"{name}"' in line:
            record: dict[str, Any] = json.loads(line)
            if record.get("event") == name:
                found.append(record)
    return found


@pytest.mark.parametrize("engine", list(ENGINES))
def test_a_canceled_plain_job_frees_the_only_worker_at_once(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]], engine: str
) -> None:
    assert len(LONG) > 4_400
    svc = start_service(service_env(engine=engine, **ENGINES[engine]))
    long = svc.submit(LONG)
    poll(lambda: svc.job(long["id"])["status"] == "running", 60, "the long job to start")
    canceled = svc.http.post(f"/v1/jobs/{long['id']}/cancel")
    assert canceled.status_code == 200, canceled.text
    started = time.monotonic()
    short = svc.wait_job(svc.submit(SHORT)["id"], timeout=120)
    waited = time.monotonic() - started
    assert short["status"] == "succeeded"
    # The long job would hold the worker for tens of seconds; the short one waits a sentence.
    assert waited < 15, f"the short job waited {waited:.1f} s behind a canceled one"
    [stopped] = poll(lambda: _events(svc, "job.abandoned"), 30, "the abandonment to be logged")
    assert (stopped["job_id"], stopped["reason"]) == (long["id"], "canceled")
    assert _events(svc, "job.lease_lost") == [] and _events(svc, "job.claim_lost") == []
    job = svc.job(long["id"])
    assert job["status"] == "canceled" and job["output"] is None
    print(f"\n{engine}: the short job finished {waited:.2f} s after the long one was canceled")
