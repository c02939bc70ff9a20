"""A job's size caps and its tenant's quotas through the API: ``POST /v1/jobs`` and
``POST /v1/audio/speech`` refuse alike, before any job exists, with stable codes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from http_checks import error_of  # type: ignore[import-not-found]
from speech_calls import Worker, services, speech  # type: ignore[import-not-found]

from steadyvoice.security.keys import NewKey
from steadyvoice.security.principal import Role

DIGITS = "1234567890" * 500  # 5,000 characters, the most api.max_text_chars takes
LONG = " ".join(f"This is sentence number {n} of a long text." for n in range(1, 41))


@dataclass(frozen=True)
class Tenant:
    """An operator key of one tenant."""

    client: TestClient
    name: str
    headers: dict[str, str]

    def submit(self, text: str = "Hello there.", **fields: Any) -> Any:
        return self.client.post("/v1/jobs", json={"text": text, **fields}, headers=self.headers)

    def speak(self, **fields: Any) -> Any:
        return self.client.post("/v1/audio/speech", json=speech(**fields), headers=self.headers)

    def jobs(self) -> list[dict[str, Any]]:
        r = self.client.get("/v1/jobs", headers=self.headers)
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items


def _tenant(client: TestClient, name: str) -> Tenant:
    issued = services(client).keys.create(NewKey(Role.OPERATOR, name, name), by="test")
    return Tenant(client, name, {"Authorization": f"Bearer {issued.token}"})


@pytest.fixture
def tenants(client_factory: Callable[..., TestClient]) -> Callable[..., tuple[Tenant, Tenant]]:
    def make(**settings: Any) -> tuple[Tenant, Tenant]:
        client = client_factory(**settings)
        return _tenant(client, "tenant-a"), _tenant(client, "tenant-b")

    return make


@pytest.mark.parametrize("route", ["jobs", "speech"])
def test_a_text_of_digits_is_refused_for_its_spoken_length(
    tenants: Callable[..., tuple[Tenant, Tenant]], route: str
) -> None:
    a, _ = tenants()
    r = a.submit(DIGITS) if route == "jobs" else a.speak(input=DIGITS)
    err = error_of(r, 422, "spoken_text_too_long")
    assert err["text_chars"] == 5_000 and err["limit"] == 10_000 and err["chars"] > 20_000
    assert "split the text into smaller jobs" in err["message"]
    assert a.jobs() == []


@pytest.mark.parametrize("route", ["jobs", "speech"])
def test_a_job_estimated_over_the_audio_cap_is_refused(
    tenants: Callable[..., tuple[Tenant, Tenant]], route: str
) -> None:
    a, _ = tenants(jobs={"max_audio_seconds": 60})
    r = a.submit(LONG) if route == "jobs" else a.speak(input=LONG)
    err = error_of(r, 422, "audio_too_long")
    assert err["estimated"] is True and err["limit"] == 60 and err["seconds"] > 60
    assert a.jobs() == []
    # Spoken twice as fast, the same text fits.
    assert a.submit(LONG, speed=2.0).status_code == 202


def test_the_daily_audio_quota_refuses_one_tenant_only(
    tenants: Callable[..., tuple[Tenant, Tenant]], worker_for: Callable[[TestClient], Worker]
) -> None:
    a, b = tenants(quotas={"tenants": {"tenant-a": {"audio_seconds_per_day": 3}}})
    first = a.submit("One small sentence here.")  # about 1.4 s, counted from acceptance
    assert first.status_code == 202, first.text
    assert a.submit("One small sentence here.").status_code == 202
    err = error_of(a.submit("One small sentence here."), 429, "audio_quota_exceeded")
    assert err["quota"] == "audio_seconds_per_day" and err["tenant"] == "tenant-a"
    assert err["limit"] == 3 and 2 < err["used"] <= 3 and err["requested"] > 0
    assert err["resets_at"].endswith("T00:00:00Z")
    assert 1 <= err["retry_after"] <= 86_400
    assert len(a.jobs()) == 2
    # The speech route shares the check (a live worker passes its own precondition first).
    worker_for(a.client)
    err = error_of(a.speak(input="One small sentence here."), 429, "audio_quota_exceeded")
    assert err["tenant"] == "tenant-a" and len(a.jobs()) == 2
    # Another tenant has no quota at all.
    for _ in range(3):
        assert b.submit(LONG).status_code == 202


def test_the_stored_bytes_quota_refuses_once_outputs_reach_it(
    tenants: Callable[..., tuple[Tenant, Tenant]], worker_for: Callable[[TestClient], Worker]
) -> None:
    a, b = tenants(quotas={"stored_bytes": 20_000, "tenants": {"tenant-b": {"stored_bytes": 0}}})
    worker = worker_for(a.client)
    keyed = {**a.headers, "Idempotency-Key": "first"}
    first = a.client.post("/v1/jobs", json={"text": "Hello there, stored."}, headers=keyed)
    assert first.status_code == 202, first.text
    assert worker.run(worker.claim()) == "succeeded"
    got = a.client.get(f"/v1/jobs/{first.json()['id']}", headers=a.headers).json()
    size = got["output"]["size_bytes"]
    assert size > 20_000
    refused = a.submit()
    err = error_of(refused, 403, "storage_quota_exceeded")
    assert err["quota"] == "stored_bytes" and err["tenant"] == "tenant-a"
    assert (err["used"], err["limit"], err["resets_at"]) == (size, 20_000, None)
    assert "Retry-After" not in refused.headers
    assert len(a.jobs()) == 1
    # A repeat of the accepted job is still answered with it: quotas refuse new work only.
    again = a.client.post("/v1/jobs", json={"text": "Hello there, stored."}, headers=keyed)
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
    # tenant-b's override lifts the quota.
    assert b.submit().status_code == 202
