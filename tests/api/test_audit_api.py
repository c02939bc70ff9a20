"""The audit log through the API: one row per state-changing call and per download, refusals
included; reads leave no row; ``GET /v1/audit`` filters and pages, for admins only."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, cast

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from http_checks import error_of  # type: ignore[import-not-found]
from speech import reference_wav  # type: ignore[import-not-found]

from steadyvoice.api.deps import Services
from steadyvoice.audio.wav import encode_wav
from steadyvoice.jobs.store import Result
from steadyvoice.security.keys import NewKey
from steadyvoice.security.principal import Role

CONSENT = "I, Jane Example, agree that steadyvoice may use my voice. 2026-11-25."
CLIENT = "testclient"  # the peer address the TestClient reports


def services(client: TestClient) -> Services:
    svc: Services = cast(FastAPI, client.app).state.services
    return svc


@dataclass(frozen=True)
class Key:
    token: str
    id: str
    tenant: str
    role: Role

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class Setup:
    """The admin client, an operator and a viewer of tenant ``acme``, and a revoked key."""

    client: TestClient
    admin: Key
    op: Key
    viewer: Key
    revoked: Key


def make_setup(client: TestClient) -> Setup:
    keys = services(client).keys

    def key(role: Role, tenant: str = "acme") -> Key:
        issued = keys.create(NewKey(role, tenant, f"audit {role}"), by="test")
        return Key(issued.token, issued.record.id, tenant, role)

    admin_token = client.headers["Authorization"].removeprefix("Bearer ")
    admin = Key(admin_token, keys.check(admin_token).id, "default", Role.ADMIN)
    revoked = key(Role.OPERATOR)
    keys.revoke(revoked.id, by="test")
    return Setup(client, admin, key(Role.OPERATOR), key(Role.VIEWER), revoked)


@pytest.fixture
def setup(client: TestClient) -> Setup:
    return make_setup(client)


def audit(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    resp = client.get("/v1/audit", params={"limit": 1000, **params})
    assert resp.status_code == 200, resp.text
    rows: list[dict[str, Any]] = resp.json()["items"]
    return rows


def last_id(client: TestClient) -> int:
    rows = audit(client, limit=1)
    return int(rows[0]["id"]) if rows else 0


def rows_of(client: TestClient, call: Callable[[], Any]) -> tuple[Any, list[dict[str, Any]]]:
    """The response of ``call`` and the audit rows written while it ran."""
    before = last_id(client)
    resp = call()
    return resp, [r for r in audit(client) if r["id"] > before]


def one_row(client: TestClient, call: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
    resp, rows = rows_of(client, call)
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["request_id"] == resp.headers["x-request-id"]
    assert row["client"] == CLIENT
    assert row["status"] == resp.status_code
    datetime.fromisoformat(row["at"].replace("Z", "+00:00"))
    return resp, row


def expect(row: dict[str, Any], key: Key | None, **fields: Any) -> None:
    who = {
        "key_id": key.id if key else None,
        "tenant": key.tenant if key else None,
        "role": key.role.value if key else None,
    }
    got = {name: row[name] for name in (*who, *fields)}
    assert got == {**who, **fields}, row


def submit(client: TestClient, key: Key, text: str = "Hello there.") -> str:
    resp = client.post("/v1/jobs", json={"text": text}, headers=key.auth)
    assert resp.status_code == 202, resp.text
    job_id: str = resp.json()["id"]
    return job_id


def upload(client: TestClient, key: Key) -> Any:
    return client.post(
        "/v1/voices",
        data={"name": "Jane", "consent": CONSENT},
        files={"audio": ("clip.wav", reference_wav(), "audio/wav")},
        headers=key.auth,
    )


def succeed(client: TestClient, job_id: str) -> None:
    svc = services(client)
    claim = svc.store.claim("test:1", 30)
    assert claim is not None and claim.job.id == job_id
    wav = encode_wav(np.sin(np.linspace(0, 40, 1600)).astype(np.float32) * 0.3, 16_000)
    sha, size = svc.storage.write_atomic(claim.job.output_name, wav)
    assert svc.store.complete(claim, Result("fake-1+sr16000", 16_000, 0.1, sha, size))


# --- one row per state change and per download ------------------------------------------------


def test_a_job_submit_and_its_cancel(setup: Setup) -> None:
    c, op = setup.client, setup.op
    resp, row = one_row(c, lambda: c.post("/v1/jobs", json={"text": "Hi."}, headers=op.auth))
    job = resp.json()
    expect(row, op, action="job.create", object_id=job["id"], outcome="ok", status=202)
    assert row["method"] == "POST" and row["route"] == "/v1/jobs"
    assert job["requester"] == op.id and job["tenant"] == op.tenant

    url = f"/v1/jobs/{job['id']}/cancel"
    _, row = one_row(c, lambda: c.post(url, headers=op.auth))
    expect(row, op, action="job.cancel", object_id=job["id"], outcome="ok", status=200)
    assert row["method"] == "POST" and row["route"] == "/v1/jobs/{job_id}/cancel"


def test_an_audio_download(setup: Setup) -> None:
    c = setup.client
    job_id = submit(c, setup.op)
    succeed(c, job_id)
    resp, row = one_row(c, lambda: c.get(f"/v1/jobs/{job_id}/audio", headers=setup.viewer.auth))
    assert resp.status_code == 200
    expect(row, setup.viewer, action="job.audio.download", object_id=job_id, outcome="ok")
    assert row["method"] == "GET" and row["route"] == "/v1/jobs/{job_id}/audio"


def test_a_voice_upload_its_reference_download_and_its_delete(setup: Setup) -> None:
    c, op = setup.client, setup.op
    resp, row = one_row(c, lambda: upload(c, op))
    vid = resp.json()["id"]
    assert resp.json()["created_by"] == op.id and resp.json()["tenant"] == op.tenant
    expect(row, op, action="voice.create", object_id=vid, outcome="ok", status=201)

    _, row = one_row(c, lambda: c.get(f"/v1/voices/{vid}/reference", headers=op.auth))
    expect(row, op, action="voice.reference.download", object_id=vid, outcome="ok", status=200)

    _, row = one_row(c, lambda: c.delete(f"/v1/voices/{vid}", headers=op.auth))
    expect(row, op, action="voice.delete", object_id=vid, outcome="ok", status=200)
    assert row["method"] == "DELETE" and row["route"] == "/v1/voices/{voice_id}"


def test_a_key_creation_and_its_revocation(setup: Setup) -> None:
    c, admin = setup.client, setup.admin
    body = {"role": "viewer", "tenant": "acme"}
    resp, row = one_row(c, lambda: c.post("/v1/keys", json=body))
    new = resp.json()
    expect(row, admin, action="key.create", object_id=new["id"], outcome="ok", status=201)
    assert new["key"] not in str(audit(c))

    _, row = one_row(c, lambda: c.delete(f"/v1/keys/{new['id']}"))
    expect(row, admin, action="key.revoke", object_id=new["id"], outcome="ok", status=200)


# --- refusals are recorded with their code ----------------------------------------------------


def anonymous(client: TestClient, method: str, url: str, **kwargs: Any) -> Any:
    request = client.build_request(method, url, **kwargs)
    del request.headers["authorization"]
    return client.send(request)


def test_a_call_without_a_key(setup: Setup) -> None:
    c = setup.client
    resp, row = one_row(c, lambda: anonymous(c, "POST", "/v1/jobs", json={"text": "Hi."}))
    assert resp.status_code == 401
    expect(row, None, action="job.create", outcome="auth_required", status=401, object_id=None)


def test_a_download_without_a_key(setup: Setup) -> None:
    c = setup.client
    job_id = submit(c, setup.op)
    _, row = one_row(c, lambda: anonymous(c, "GET", f"/v1/jobs/{job_id}/audio"))
    expect(row, None, action="job.audio.download", outcome="auth_required", object_id=job_id)


def test_a_call_with_a_wrong_key(setup: Setup) -> None:
    c = setup.client
    bad = {"Authorization": "Bearer sv_0123456789ab_" + "A" * 43}
    _, row = one_row(c, lambda: c.post("/v1/jobs", json={"text": "Hi."}, headers=bad))
    expect(row, None, action="job.create", outcome="invalid_key", status=401)


def test_a_call_with_a_revoked_key(setup: Setup) -> None:
    c = setup.client
    resp, row = one_row(
        c, lambda: c.post("/v1/jobs", json={"text": "Hi."}, headers=setup.revoked.auth)
    )
    error_of(resp, 401, "key_revoked")
    assert row["key_id"] == setup.revoked.id
    assert (row["action"], row["outcome"], row["status"]) == ("job.create", "key_revoked", 401)


def test_a_call_above_the_keys_role(setup: Setup) -> None:
    c, viewer = setup.client, setup.viewer
    resp, row = one_row(c, lambda: c.post("/v1/jobs", json={"text": "Hi."}, headers=viewer.auth))
    error_of(resp, 403, "forbidden")
    # The key is known and valid: who it is, and for which tenant, is on record.
    expect(row, viewer, action="job.create", outcome="forbidden", status=403)


def test_an_invalid_body(setup: Setup) -> None:
    c, op = setup.client, setup.op
    _, row = one_row(c, lambda: c.post("/v1/jobs", json={"text": 5}, headers=op.auth))
    expect(row, op, action="job.create", outcome="invalid_request", status=422, object_id=None)


def test_a_cancel_of_an_unknown_job(setup: Setup) -> None:
    c, op = setup.client, setup.op
    nobody = uuid.uuid4().hex
    _, row = one_row(c, lambda: c.post(f"/v1/jobs/{nobody}/cancel", headers=op.auth))
    expect(row, op, action="job.cancel", outcome="job_not_found", status=404, object_id=nobody)


def test_a_body_over_the_limit(client_factory: Callable[..., TestClient]) -> None:
    s = make_setup(client_factory(api={"max_body_bytes": 2048}))
    c, op = s.client, s.op
    big = {"text": "a" * 5000}
    _, row = one_row(c, lambda: c.post("/v1/jobs", json=big, headers=op.auth))
    expect(row, op, action="job.create", outcome="body_too_large", status=413)


# --- reads leave no row -----------------------------------------------------------------------


def test_reads_are_not_audited(setup: Setup) -> None:
    c, op, viewer = setup.client, setup.op, setup.viewer
    job_id = submit(c, op)
    vid = upload(c, op).json()["id"]
    before = audit(c)
    reads = [
        (viewer, f"/v1/jobs/{job_id}"),
        (viewer, "/v1/jobs"),
        (viewer, f"/v1/voices/{vid}"),
        (viewer, "/v1/voices"),
        (viewer, "/v1/me"),
        (setup.admin, "/v1/keys"),
        (setup.admin, "/v1/audit"),
        (setup.admin, "/v1/slo"),
        (setup.admin, "/openapi.json"),
        (viewer, f"/v1/jobs/{uuid.uuid4().hex}"),  # a 404 read
    ]
    for key, url in reads:
        assert c.get(url, headers=key.auth).status_code in (200, 404)
    for url in ("/healthz", "/readyz", "/metrics"):
        anonymous(c, "GET", url)
    assert audit(c) == before


# --- reading the log --------------------------------------------------------------------------


@pytest.fixture
def busy(client_factory: Callable[..., TestClient], db_url: str) -> tuple[Setup, dict[str, Any]]:
    """Some history on SQLite or PostgreSQL; returns the setup and the ids it made."""
    s = make_setup(client_factory(database_url=db_url))
    c = s.client
    jobs = [submit(c, s.op, f"Job {n}.") for n in range(2)]
    assert c.post(f"/v1/jobs/{jobs[0]}/cancel", headers=s.op.auth).status_code == 200
    assert c.post("/v1/keys", json={"role": "viewer", "tenant": "other"}).status_code == 201
    assert c.post("/v1/jobs", json={"text": "No."}, headers=s.viewer.auth).status_code == 403
    assert anonymous(c, "POST", "/v1/jobs", json={"text": "No."}).status_code == 401
    return s, {"jobs": jobs}


def test_filters(busy: tuple[Setup, dict[str, Any]]) -> None:
    s, made = busy
    c = s.client
    every = audit(c)
    assert len(every) == 6

    by_op = audit(c, key_id=s.op.id)
    assert len(by_op) == 3 and {r["key_id"] for r in by_op} == {s.op.id}
    acme = audit(c, tenant="acme")
    assert {r["tenant"] for r in acme} == {"acme"}
    assert {r["id"] for r in by_op} <= {r["id"] for r in acme}
    cancels = audit(c, action="job.cancel")
    assert [(r["object_id"], r["key_id"]) for r in cancels] == [(made["jobs"][0], s.op.id)]
    on_job = audit(c, object_id=made["jobs"][0])
    assert sorted(r["action"] for r in on_job) == ["job.cancel", "job.create"]
    assert [r["key_id"] for r in audit(c, outcome="forbidden")] == [s.viewer.id]
    assert [r["key_id"] for r in audit(c, outcome="auth_required")] == [None]
    assert len(audit(c, outcome="ok")) == 4
    assert audit(c, key_id="key_000000000000") == []


def test_time_filters_need_a_timezone_and_honour_it(busy: tuple[Setup, dict[str, Any]]) -> None:
    c = busy[0].client
    every = audit(c)
    middle = every[3]  # newest first
    at = datetime.fromisoformat(middle["at"].replace("Z", "+00:00"))
    since = [r["id"] for r in audit(c, since=middle["at"])]
    until = [r["id"] for r in audit(c, until=middle["at"])]
    assert middle["id"] in since and middle["id"] not in until
    assert sorted(since + until, reverse=True) == [r["id"] for r in every]
    # The same instant written in another timezone selects the same rows.
    shifted = at.astimezone(timezone(timedelta(hours=5))).isoformat()
    assert shifted.endswith("+05:00")
    assert [r["id"] for r in audit(c, since=shifted)] == since
    assert [r["id"] for r in audit(c, until=shifted)] == until
    assert audit(c, since=(at + timedelta(days=1)).isoformat()) == []
    for name in ("since", "until"):
        resp = c.get("/v1/audit", params={name: "2026-01-01T00:00:00"})
        assert error_of(resp, 422, "invalid_request")["field"] == name
        error_of(c.get("/v1/audit", params={name: "yesterday"}), 422, "invalid_request")


def test_pages_follow_next_cursor(busy: tuple[Setup, dict[str, Any]]) -> None:
    c = busy[0].client
    every = [r["id"] for r in audit(c)]
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 4}
    pages = 0
    while True:
        resp = c.get("/v1/audit", params=params)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        pages += 1
        assert len(page["items"]) <= 4
        seen.extend(r["id"] for r in page["items"])
        if page["next_cursor"] is None:
            break
        params = {"limit": 4, "cursor": page["next_cursor"]}
    assert seen == every and pages == 2
    filtered = c.get("/v1/audit", params={"limit": 1, "key_id": busy[0].op.id}).json()
    rest = c.get(
        "/v1/audit", params={"limit": 5, "key_id": busy[0].op.id, "cursor": filtered["next_cursor"]}
    ).json()
    assert [r["id"] for r in filtered["items"] + rest["items"]] == [
        r["id"] for r in audit(c, key_id=busy[0].op.id)
    ]
    for cursor in ("abc", "-1", "9" * 19):
        error_of(c.get("/v1/audit", params={"cursor": cursor}), 422, "invalid_request")


def test_only_admins_read_the_log(setup: Setup) -> None:
    c = setup.client
    for key in (setup.op, setup.viewer):
        err = error_of(c.get("/v1/audit", headers=key.auth), 403, "forbidden")
        assert err["needed"] == "admin"
    error_of(anonymous(c, "GET", "/v1/audit"), 401, "auth_required")
