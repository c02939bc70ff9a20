"""Job size caps and tenant quotas in a real ``serve``: refusals before any job exists, a daily
audio quota for one tenant only, and a worker that stops a job at its own audio cap."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from http_checks import error_of  # type: ignore[import-not-found]
from processes import Process, Service, ServiceFactory  # type: ignore[import-not-found]

SHORT = "One small sentence here."  # about 1.4 s with the fake engine
LONG = " ".join(f"This is sentence number {n} of a long text." for n in range(1, 41))


def _key(svc: Service, tenant: str) -> dict[str, str]:
    r = svc.http.post("/v1/keys", json={"role": "operator", "tenant": tenant})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['key']}"}


def _outputs(data: Path) -> list[Path]:
    return [p for p in (data / "outputs").rglob("*") if p.is_file()]


def test_caps_and_a_tenants_daily_quota_in_a_real_service(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]]
) -> None:
    quotas = {"acme": {"audio_seconds_per_day": 3}}
    svc = start_service(service_env(engine="fake", quotas__tenants=json.dumps(quotas)))
    acme, other = _key(svc, "acme"), _key(svc, "other")

    digits = svc.http.post("/v1/jobs", json={"text": "1234567890" * 500}, headers=acme)
    err = error_of(digits, 422, "spoken_text_too_long")
    assert err["chars"] > err["limit"] == 10_000

    ids = []
    for _ in range(2):
        r = svc.http.post("/v1/jobs", json={"text": SHORT}, headers=acme)
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    for job_id in ids:  # made: their real durations now count, not the estimates
        assert svc.wait_job(job_id)["status"] == "succeeded"
    refused = svc.http.post("/v1/jobs", json={"text": SHORT}, headers=acme)
    err = error_of(refused, 429, "audio_quota_exceeded")
    assert err["tenant"] == "acme" and err["limit"] == 3 and 2 < err["used"] <= 3
    assert refused.headers["Retry-After"] == str(err["retry_after"])
    listed = svc.http.get("/v1/jobs", headers=acme).json()["items"]
    assert sorted(j["id"] for j in listed) == sorted(ids)

    r = svc.http.post("/v1/jobs", json={"text": LONG}, headers=other)
    assert r.status_code == 202, r.text
    assert svc.wait_job(r.json()["id"])["status"] == "succeeded"


def test_a_worker_stops_a_job_at_its_audio_cap(
    start_service: ServiceFactory,
    start_worker: Callable[[dict[str, str]], Process],
    service_env: Callable[..., dict[str, str]],
    tmp_path: Path,
) -> None:
    """The API accepts the job (no cap there); the worker's own cap stops it."""
    data = tmp_path / "data"
    env = service_env(data_dir=data, engine="fake")
    api = start_service(
        {**env, "STEADYVOICE_JOBS__MAX_AUDIO_SECONDS": "0"}, "--no-workers", ready=False
    )
    start_worker({**env, "STEADYVOICE_JOBS__MAX_AUDIO_SECONDS": "5"})
    api.wait_ready(timeout=60)
    job = api.submit(LONG)
    done = api.wait_job(job["id"])
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "audio_too_long"
    assert "more than 5 s of audio" in done["error"]["message"]
    error_of(api.http.get(f"/v1/jobs/{job['id']}/audio"), 409, "audio_not_ready")
    assert _outputs(data) == []
    # A job within the cap is made as usual by the same worker.
    assert api.wait_job(api.submit(SHORT)["id"])["status"] == "succeeded"
