"""Retention through the API: purged audio answers 410, legal holds are admin calls, audited,
and the API's sweeper runs the purge on its own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from http_checks import error_of  # type: ignore[import-not-found]
from processes import admin_key, poll  # type: ignore[import-not-found]
from sqlalchemy import update
from test_jobs_api import services, submit, succeed  # type: ignore[import-not-found]

from steadyvoice.api.app import create_app
from steadyvoice.jobs.models import Job, utcnow
from steadyvoice.security.audit import AuditLog, AuditQuery
from steadyvoice.security.keys import NewKey
from steadyvoice.security.principal import Role
from steadyvoice.settings import RetentionSettings, Settings
from steadyvoice.storage.retention import PURGE_ACTION, purge_outputs

pytestmark = pytest.mark.timeout(120)


def _old_job(client: TestClient, days: float = 40) -> str:
    """A succeeded job with its audio, created ``days`` ago."""
    job_id = submit(client)
    succeed(client, job_id)
    _age(client, job_id, days)
    return job_id


def _age(client: TestClient, job_id: str, days: float) -> None:
    with services(client).store.session() as s:
        s.execute(
            update(Job).where(Job.id == job_id).values(created_at=utcnow() - timedelta(days=days))
        )


def _purge(client: TestClient) -> int:
    svc = services(client)
    return purge_outputs(svc.store, svc.storage, RetentionSettings(outputs_days=30)).jobs


def _actions(client: TestClient, action: str) -> list[tuple[str | None, str]]:
    events = AuditLog(services(client).store).query(AuditQuery(action=action))
    return [(e.object_id, e.outcome) for e in reversed(events)]


def test_purged_audio_answers_410_and_the_job_keeps_its_record(client: TestClient) -> None:
    job_id = _old_job(client)
    before = client.get(f"/v1/jobs/{job_id}").json()
    assert before["output"]["purged_at"] is None
    assert client.get(f"/v1/jobs/{job_id}/audio").status_code == 200

    assert _purge(client) == 1

    after = client.get(f"/v1/jobs/{job_id}").json()
    assert after["status"] == "succeeded" and after["output"]["purged_at"] is not None
    assert after["output"]["sha256"] == before["output"]["sha256"]
    for url in (f"/v1/jobs/{job_id}/audio", f"/v1/jobs/{job_id}/audio?format=mp3"):
        err = error_of(client.get(url), 410, "output_purged")
        assert err["sha256"] == before["output"]["sha256"]
    assert _actions(client, PURGE_ACTION) == [(job_id, "ok")]


def test_holds_are_admin_calls_audited_and_exempt(client: TestClient) -> None:
    held, tenant_job = _old_job(client), _old_job(client)
    body = {"reason": "case 2026-17"}
    resp = client.post(f"/v1/jobs/{held}/hold", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["kind"] == "job" and resp.json()["subject"] == held
    assert resp.json()["placed_by"] == client.get("/v1/me").json()["key_id"]
    assert client.post("/v1/tenants/default/hold", json=body).status_code == 200
    listed = client.get("/v1/holds").json()["items"]
    assert [(h["kind"], h["subject"]) for h in listed] == [("job", held), ("tenant", "default")]

    assert _purge(client) == 0  # the tenant hold covers both
    assert client.delete("/v1/tenants/default/hold").status_code == 200
    assert _purge(client) == 1  # the job hold still covers one
    assert client.get(f"/v1/jobs/{held}/audio").status_code == 200
    error_of(client.get(f"/v1/jobs/{tenant_job}/audio"), 410, "output_purged")
    assert client.delete(f"/v1/jobs/{held}/hold").status_code == 200
    assert _purge(client) == 1

    assert _actions(client, "hold.place") == [(held, "ok"), ("default", "ok")]
    assert _actions(client, "hold.lift") == [("default", "ok"), (held, "ok")]


def test_hold_errors(client: TestClient) -> None:
    job_id = _old_job(client)
    body = {"reason": "case"}
    error_of(client.delete(f"/v1/jobs/{job_id}/hold"), 404, "hold_not_found")
    error_of(client.post(f"/v1/jobs/{'0' * 32}/hold", json=body), 404, "job_not_found")
    error_of(client.post("/v1/tenants/Bad%20Name/hold", json=body), 422, "invalid_request")
    error_of(client.post(f"/v1/jobs/{job_id}/hold", json={"reason": ""}), 422, "invalid_request")
    _purge(client)
    error_of(client.post(f"/v1/jobs/{job_id}/hold", json=body), 410, "output_purged")

    keys = services(client).keys
    for role in (Role.OPERATOR, Role.VIEWER):
        token = keys.create(NewKey(role, "default", f"a {role}"), by="test").token
        auth = {"Authorization": f"Bearer {token}"}
        error_of(client.post(f"/v1/jobs/{job_id}/hold", json=body, headers=auth), 403, "forbidden")
        error_of(client.get("/v1/holds", headers=auth), 403, "forbidden")


def test_the_api_sweeper_purges_on_its_own(settings_factory: Callable[..., Settings]) -> None:
    """The sweeper's round purges, and takes the cached conversions of the audio with it."""
    settings = settings_factory(
        retention={"outputs_days": 30}, security={"rate_sweep_seconds": 0.2}
    )
    cache = settings.data_dir / "conversions"
    with TestClient(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {admin_key(settings.data_dir)}"
        job_id = _old_job(client, days=0)
        assert client.get(f"/v1/jobs/{job_id}/audio?format=flac").status_code == 200
        assert [p.suffix for p in cache.iterdir()] == [".flac"]
        _age(client, job_id, days=40)

        def purged() -> Any:
            return client.get(f"/v1/jobs/{job_id}").json()["output"]["purged_at"]

        poll(purged, 20, "the sweeper's purge")
        error_of(client.get(f"/v1/jobs/{job_id}/audio"), 410, "output_purged")
        assert list(cache.iterdir()) == []
