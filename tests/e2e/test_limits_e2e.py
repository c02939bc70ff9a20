"""Per-key limits hold across API processes: two real ``serve`` processes, one database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import cycle
from pathlib import Path

import httpx
import pytest
from http_checks import error_of  # type: ignore[import-not-found]
from processes import Service, ServiceFactory  # type: ignore[import-not-found]


@pytest.fixture
def two_apis(
    db_url: str,
    start_service: ServiceFactory,
    service_env: Callable[..., dict[str, str]],
    tmp_path: Path,
) -> Iterator[tuple[Service, Service]]:
    """Two API processes (no workers, so jobs stay queued) on one database and data dir."""
    env = service_env(data_dir=tmp_path / "shared", engine="fake", database_url=db_url)
    first = start_service(env, "--no-workers", ready=False)
    # Each instance on a host has its own metrics dir (a second serve may not take the first's).
    own = {**env, "STEADYVOICE_METRICS_DIR": str(tmp_path / "metrics-second")}
    second = start_service(own, "--no-workers", ready=False)
    yield first, second


def _key(svc: Service, **fields: object) -> dict[str, str]:
    r = svc.http.post("/v1/keys", json={"role": "operator", "tenant": "acme", **fields})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['key']}"}


def test_the_request_rate_is_shared_by_every_api_process(two_apis: tuple[Service, Service]) -> None:
    first, second = two_apis
    auth = _key(first, rate_per_minute=6)
    apis = cycle(two_apis)
    for _ in range(6):
        assert next(apis).http.get("/v1/me", headers=auth).status_code == 200
    # Three calls went to each process: per-process counting would still allow 3 more each.
    for svc in (first, second):
        refused = svc.http.get("/v1/me", headers=auth)
        error = error_of(refused, 429, "rate_limited")
        assert error["limit"] == 6
        assert 1 <= int(refused.headers["Retry-After"]) <= 120
        assert int(refused.headers["Retry-After"]) == error["retry_after"]
    # Other keys are not affected.
    assert second.http.get("/v1/me").status_code == 200


def test_the_in_flight_quota_is_shared_and_exact_under_concurrency(
    two_apis: tuple[Service, Service],
) -> None:
    first, second = two_apis
    auth = _key(first, max_in_flight=3)

    def submit(svc: Service, n: int) -> httpx.Response:
        return svc.http.post("/v1/jobs", json={"text": f"Job number {n}."}, headers=auth)

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(submit, [first, second] * 6, range(12)))
    accepted = [r for r in answers if r.status_code == 202]
    assert len(accepted) == 3, [r.status_code for r in answers]
    for refused in (r for r in answers if r.status_code != 202):
        error = error_of(refused, 429, "too_many_jobs_in_flight")
        assert error["limit"] == 3 and error["in_flight"] == 3
        assert int(refused.headers["Retry-After"]) >= 1
    # A finished (here: canceled) job frees its place, on either process.
    job_id = accepted[0].json()["id"]
    assert second.http.post(f"/v1/jobs/{job_id}/cancel", headers=auth).status_code == 200
    assert submit(first, 99).status_code == 202
    assert submit(second, 100).status_code == 429
    # The admin's own quota is separate.
    assert second.http.post("/v1/jobs", json={"text": "Admin job."}).status_code == 202
