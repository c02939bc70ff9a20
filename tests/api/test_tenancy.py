"""Tenants cannot see each other: another tenant's jobs, audio, voices and references answer
exactly as if they did not exist, on SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
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


def services(client: TestClient) -> Services:
    svc: Services = cast(FastAPI, client.app).state.services
    return svc


@dataclass(frozen=True)
class Caller:
    """A client bound to one key."""

    client: TestClient
    token: str
    key_id: str
    tenant: str

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {**(extra or {}), "Authorization": f"Bearer {self.token}"}

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, headers=self._headers(kwargs.pop("headers", None)), **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.client.post(url, headers=self._headers(kwargs.pop("headers", None)), **kwargs)

    def delete(self, url: str) -> Any:
        return self.client.delete(url, headers=self._headers(None))


@dataclass(frozen=True)
class World:
    """Tenants ``a`` and ``b`` with an operator and a viewer each, and the bootstrap admin."""

    client: TestClient
    a_op: Caller
    a_view: Caller
    b_op: Caller
    b_view: Caller
    admin: TestClient


@pytest.fixture
def world(client_factory: Callable[..., TestClient], db_url: str) -> World:
    client = client_factory(database_url=db_url)
    keys = services(client).keys

    def caller(role: Role, tenant: str) -> Caller:
        issued = keys.create(NewKey(role, tenant, f"{tenant} {role}"), by="test")
        return Caller(client, issued.token, issued.record.id, tenant)

    return World(
        client=client,
        a_op=caller(Role.OPERATOR, "tenant-a"),
        a_view=caller(Role.VIEWER, "tenant-a"),
        b_op=caller(Role.OPERATOR, "tenant-b"),
        b_view=caller(Role.VIEWER, "tenant-b"),
        admin=client,  # sends the bootstrap admin key (tenant ``default``)
    )


def submit(
    caller: Caller, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    resp = caller.post("/v1/jobs", json=body or {"text": "Hello there."}, headers=headers)
    assert resp.status_code == 202, resp.text
    job: dict[str, Any] = resp.json()
    return job


def upload(caller: Caller) -> dict[str, Any]:
    resp = caller.post(
        "/v1/voices",
        data={"name": "Jane", "consent": CONSENT},
        files={"audio": ("clip.wav", reference_wav(), "audio/wav")},
    )
    assert resp.status_code == 201, resp.text
    voice: dict[str, Any] = resp.json()
    return voice


def succeed(client: TestClient, job_id: str) -> bytes:
    """Do what a worker does: claim, write a real WAV through storage, complete."""
    svc = services(client)
    claim = svc.store.claim("test:1", 30)
    assert claim is not None and claim.job.id == job_id
    wav = encode_wav(np.sin(np.linspace(0, 40, 1600)).astype(np.float32) * 0.3, 16_000)
    sha, size = svc.storage.write_atomic(claim.job.output_name, wav)
    assert svc.store.complete(claim, Result("fake-1+sr16000", 16_000, 0.1, sha, size))
    return wav


def same_answer(theirs: Any, missing: Any, their_id: str, missing_id: str) -> None:
    """Another tenant's object answers exactly like one that never existed (ids aside)."""
    assert theirs.status_code == missing.status_code, (theirs.text, missing.text)
    assert set(theirs.headers) == set(missing.headers)

    def masked(resp: Any, object_id: str) -> dict[str, Any]:
        err: dict[str, Any] = resp.json()["error"]
        err.pop("request_id")
        text = resp.text.replace(object_id, "<id>")
        assert object_id not in text
        return {k: str(v).replace(object_id, "<id>") for k, v in err.items()}

    assert masked(theirs, their_id) == masked(missing, missing_id)


def ids_of(page: Any) -> list[str]:
    assert page.status_code == 200, page.text
    return [item["id"] for item in page.json()["items"]]


# --- jobs -------------------------------------------------------------------------------------


def test_another_tenants_job_is_404_everywhere(world: World) -> None:
    job = submit(world.a_op)["id"]
    nobody = uuid.uuid4().hex
    for caller in (world.b_op, world.b_view):
        for path in ("/v1/jobs/{}", "/v1/jobs/{}/audio"):
            theirs = caller.get(path.format(job))
            error_of(theirs, 404, "job_not_found")
            same_answer(theirs, caller.get(path.format(nobody)), job, nobody)
    cancel = world.b_op.post(f"/v1/jobs/{job}/cancel")
    error_of(cancel, 404, "job_not_found")
    same_answer(cancel, world.b_op.post(f"/v1/jobs/{nobody}/cancel"), job, nobody)
    # Nothing happened to it, and its owner still reads it.
    for caller in (world.a_op, world.a_view):
        mine = caller.get(f"/v1/jobs/{job}")
        assert mine.status_code == 200, mine.text
        assert mine.json()["status"] == "queued"


def test_a_job_records_its_key_and_tenant(world: World) -> None:
    job = submit(world.a_op)
    assert job["requester"] == world.a_op.key_id
    assert job["tenant"] == "tenant-a"


def test_audio_of_another_tenants_succeeded_job_is_404(world: World) -> None:
    job = submit(world.a_op)["id"]
    wav = succeed(world.client, job)
    for caller in (world.b_op, world.b_view):
        error_of(caller.get(f"/v1/jobs/{job}/audio"), 404, "job_not_found")
    for caller in (world.a_view, world.a_op):
        resp = caller.get(f"/v1/jobs/{job}/audio")
        assert resp.status_code == 200, resp.text
        assert resp.content == wav
        assert resp.headers["x-content-sha256"] == hashlib.sha256(wav).hexdigest()
    admin = world.admin.get(f"/v1/jobs/{job}/audio")
    assert admin.status_code == 200 and admin.content == wav


def test_job_lists_hold_only_the_callers_tenant(world: World) -> None:
    a_jobs = [submit(world.a_op, {"text": f"A {n}."})["id"] for n in range(2)]
    b_jobs = [submit(world.b_op, {"text": f"B {n}."})["id"] for n in range(2)]
    default = submit_as_admin(world.admin)
    for caller in (world.b_op, world.b_view):
        assert ids_of(caller.get("/v1/jobs")) == b_jobs[::-1]
        assert ids_of(caller.get("/v1/jobs", params={"status": "queued"})) == b_jobs[::-1]
    for caller in (world.a_op, world.a_view):
        assert ids_of(caller.get("/v1/jobs")) == a_jobs[::-1]
    # Paging stays inside the tenant too.
    first = world.b_view.get("/v1/jobs", params={"limit": 1}).json()
    rest = world.b_view.get("/v1/jobs", params={"limit": 1, "cursor": first["next_cursor"]})
    assert ids_of(rest) == [b_jobs[0]]
    every = ids_of(world.admin.get("/v1/jobs"))
    assert set(every) == {*a_jobs, *b_jobs, default}


def submit_as_admin(admin: TestClient) -> str:
    resp = admin.post("/v1/jobs", json={"text": "Admin's own."})
    assert resp.status_code == 202, resp.text
    job_id: str = resp.json()["id"]
    return job_id


def test_an_idempotency_key_is_not_shared_across_tenants(world: World) -> None:
    same = {"Idempotency-Key": "same-key"}
    a_job = submit(world.a_op, headers=same)
    b_job = submit(world.b_op, headers=same)
    assert b_job["id"] != a_job["id"]
    assert b_job["tenant"] == "tenant-b" and b_job["requester"] == world.b_op.key_id
    error_of(world.b_op.get(f"/v1/jobs/{a_job['id']}"), 404, "job_not_found")


# --- voices -----------------------------------------------------------------------------------


def test_another_tenants_voice_is_404_everywhere(world: World) -> None:
    voice = upload(world.a_op)
    vid = voice["id"]
    assert voice["tenant"] == "tenant-a" and voice["created_by"] == world.a_op.key_id
    nobody = f"vp_{uuid.uuid4().hex}"
    checks: list[tuple[Caller, str, str]] = [
        (world.b_view, "GET", "/v1/voices/{}"),
        (world.b_op, "GET", "/v1/voices/{}"),
        (world.b_op, "GET", "/v1/voices/{}/reference"),
        (world.b_op, "DELETE", "/v1/voices/{}"),
    ]
    for caller, method, path in checks:
        call = caller.get if method == "GET" else caller.delete
        theirs = call(path.format(vid))
        error_of(theirs, 404, "voice_not_found")
        same_answer(theirs, call(path.format(nobody)), vid, nobody)
    # B's delete did nothing; A still reads the profile and its recording.
    mine = world.a_view.get(f"/v1/voices/{vid}")
    assert mine.status_code == 200 and mine.json()["status"] == "active"
    ref = world.a_op.get(f"/v1/voices/{vid}/reference")
    assert ref.status_code == 200
    assert hashlib.sha256(ref.content).hexdigest() == voice["reference"]["sha256"]
    assert world.admin.get(f"/v1/voices/{vid}").status_code == 200
    assert world.admin.get(f"/v1/voices/{vid}/reference").status_code == 200


def test_voice_lists_hold_only_the_callers_tenant(world: World) -> None:
    a_voice = upload(world.a_op)["id"]
    b_voice = upload(world.b_op)["id"]
    for caller in (world.b_op, world.b_view):
        assert ids_of(caller.get("/v1/voices")) == [b_voice]
        assert ids_of(caller.get("/v1/voices", params={"include_deleted": "true"})) == [b_voice]
    assert ids_of(world.a_view.get("/v1/voices")) == [a_voice]
    assert set(ids_of(world.admin.get("/v1/voices"))) == {a_voice, b_voice}


def test_a_job_naming_another_tenants_voice_is_unknown_voice(world: World) -> None:
    vid = upload(world.a_op)["id"]
    nobody = f"vp_{uuid.uuid4().hex}"
    theirs = world.b_op.post("/v1/jobs", json={"text": "Hello.", "voice": vid})
    err = error_of(theirs, 422, "unknown_voice")
    assert err["voice"] == vid
    missing = world.b_op.post("/v1/jobs", json={"text": "Hello.", "voice": nobody})
    same_answer(theirs, missing, vid, nobody)
    assert ids_of(world.b_op.get("/v1/jobs")) == []
    # Its owner may use it.
    mine = world.a_op.post("/v1/jobs", json={"text": "Hello.", "voice": vid})
    assert mine.status_code == 202, mine.text
    assert mine.json()["voice"] == vid
