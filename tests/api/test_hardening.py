"""Hardening: security headers on every kind of answer, CORS closed unless configured, the docs
off by default, nothing secret in a real service's log, and a ``Server`` header that says
nothing."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import httpx
import numpy as np
from fastapi import FastAPI
from fastapi.testclient import TestClient
from http_checks import error_of, hardened  # type: ignore[import-not-found]
from processes import ServiceFactory, admin_key  # type: ignore[import-not-found]
from speech import reference_wav  # type: ignore[import-not-found]

from steadyvoice.api.deps import Services
from steadyvoice.audio.wav import encode_wav
from steadyvoice.jobs.store import Result
from steadyvoice.security.keys import NewKey
from steadyvoice.security.principal import Role

ORIGIN = "https://app.example"
CONSENT = "I, Jane Example, agree that steadyvoice may use my voice. 2026-11-25."


def services(client: TestClient) -> Services:
    svc: Services = cast(FastAPI, client.app).state.services
    return svc


def anonymous(client: TestClient, method: str, url: str, **kwargs: Any) -> Any:
    request = client.build_request(method, url, **kwargs)
    del request.headers["authorization"]
    return client.send(request)


# --- security headers -------------------------------------------------------------------------


def _succeeded_job(client: TestClient) -> str:
    job_id: str = client.post("/v1/jobs", json={"text": "Hello there."}).json()["id"]
    svc = services(client)
    claim = svc.store.claim("test:1", 30)
    assert claim is not None and claim.job.id == job_id
    wav = encode_wav(np.sin(np.linspace(0, 40, 1600)).astype(np.float32) * 0.3, 16_000)
    sha, size = svc.storage.write_atomic(claim.job.output_name, wav)
    assert svc.store.complete(claim, Result("fake-1+sr16000", 16_000, 0.1, sha, size))
    return job_id


def test_json_answers_carry_the_security_headers(client: TestClient) -> None:
    for url in ("/v1/me", "/v1/jobs", "/openapi.json"):
        resp = client.get(url)
        assert resp.status_code == 200
        hardened(resp)
    for url in ("/healthz", "/readyz", "/metrics"):
        hardened(anonymous(client, "GET", url))


def test_errors_carry_the_security_headers(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory(api={"max_body_bytes": 2048})
    viewer = services(client).keys.create(NewKey(Role.VIEWER, "default"), by="test").token
    cases = [
        (anonymous(client, "GET", "/v1/jobs"), 401),
        (anonymous(client, "POST", "/v1/jobs", json={"text": "Hi."}), 401),
        (client.get("/v1/me", headers={"Authorization": "Bearer sv_nothing"}), 401),
        (client.post("/v1/jobs", json={}, headers={"Authorization": f"Bearer {viewer}"}), 403),
        (client.get("/v1/jobs/0123456789abcdef0123456789abcdef"), 404),
        (client.get("/v2/nothing"), 404),
        (client.delete("/v1/jobs"), 405),
        (client.post("/v1/jobs", json={"text": 5}), 422),
        (client.post("/v1/jobs", json={"text": "a" * 5000}), 413),
    ]
    for resp, status in cases:
        assert resp.status_code == status, resp.text
        assert resp.headers["content-type"].startswith("application/json")
        hardened(resp)


def test_audio_downloads_carry_the_security_headers(client: TestClient) -> None:
    job_id = _succeeded_job(client)
    audio = client.get(f"/v1/jobs/{job_id}/audio")
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
    hardened(audio)
    voice = client.post(
        "/v1/voices",
        data={"name": "Jane", "consent": CONSENT},
        files={"audio": ("clip.wav", reference_wav(), "audio/wav")},
    )
    assert voice.status_code == 201, voice.text
    hardened(voice)
    ref = client.get(voice.json()["reference"]["url"])
    assert ref.status_code == 200 and ref.headers["content-type"] == "audio/wav"
    hardened(ref)


# --- CORS -------------------------------------------------------------------------------------


def preflight(client: TestClient, origin: str, method: str = "POST") -> Any:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    return anonymous(client, "OPTIONS", "/v1/jobs", headers=headers)


def test_cors_is_closed_by_default(client: TestClient) -> None:
    resp = preflight(client, ORIGIN)
    assert resp.status_code >= 400
    assert not any(h.startswith("access-control-") for h in resp.headers)
    got = client.get("/v1/me", headers={"Origin": ORIGIN})
    assert got.status_code == 200
    assert "access-control-allow-origin" not in got.headers


def test_cors_opens_to_the_configured_origins_only(
    client_factory: Callable[..., TestClient],
) -> None:
    client = client_factory(api={"cors_origins": [ORIGIN]})
    resp = preflight(client, ORIGIN)
    assert resp.status_code == 200, resp.text
    assert resp.headers["access-control-allow-origin"] == ORIGIN
    methods = {m.strip() for m in resp.headers["access-control-allow-methods"].split(",")}
    assert {"GET", "POST", "DELETE"} <= methods
    allowed = {h.strip().lower() for h in resp.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed
    got = client.get("/v1/me", headers={"Origin": ORIGIN})
    assert got.status_code == 200
    assert got.headers["access-control-allow-origin"] == ORIGIN
    hardened(got)

    other = "https://evil.example"
    refused = preflight(client, other)
    assert refused.status_code >= 400
    assert "access-control-allow-origin" not in refused.headers
    got = client.get("/v1/me", headers={"Origin": other})
    assert "access-control-allow-origin" not in got.headers
    # A configured origin still needs a key for the call itself.
    error_of(anonymous(client, "GET", "/v1/me", headers={"Origin": ORIGIN}), 401, "auth_required")


# --- the docs ---------------------------------------------------------------------------------


def test_the_docs_are_off_by_default(client: TestClient) -> None:
    for url in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        error_of(client.get(url), 404, "not_found")
        error_of(anonymous(client, "GET", url), 401, "auth_required")


def test_the_docs_when_enabled_are_open(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory(api={"docs": True})
    for url in ("/docs", "/redoc"):
        page = anonymous(client, "GET", url)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        hardened(page, csp=False)
    schema = anonymous(client, "GET", "/openapi.json")
    assert schema.status_code == 200 and "/v1/jobs" in schema.json()["paths"]
    # Opening the docs opens nothing else.
    error_of(anonymous(client, "GET", "/v1/jobs"), 401, "auth_required")


# --- a real service: its log and its Server header --------------------------------------------

TEXT = "Quixotic zebras vouch for the plum-coloured lighthouse 4471, said Xanthippe Ravensworth."


def _lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.strip()]


def test_the_log_holds_no_keys_and_no_request_text(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    svc = start_service(service_env(ENGINE="fake"))
    admin = admin_key(tmp_path / "data")
    assert admin is not None
    http = svc.http
    made = http.post("/v1/keys", json={"role": "operator", "tenant": "logs"})
    assert made.status_code == 201, made.text
    operator = made.json()["key"]
    doomed = http.post("/v1/keys", json={"role": "viewer", "tenant": "logs"}).json()
    assert http.delete(f"/v1/keys/{doomed['id']}").status_code == 200
    revoked = doomed["key"]
    public = admin.split("_")[1]
    wrong = [
        f"sv_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}",  # unknown
        f"sv_{public}_{secrets.token_urlsafe(32)}",  # a real id, a wrong secret
        "sv_" + TEXT.replace(" ", "_"),  # malformed
    ]

    def as_key(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    job = http.post("/v1/jobs", json={"text": TEXT}, headers=as_key(operator))
    assert job.status_code == 202, job.text
    job_id = job.json()["id"]
    assert svc.wait_job(job_id)["status"] == "succeeded"
    audio = http.get(f"/v1/jobs/{job_id}/audio", headers=as_key(operator))
    assert audio.status_code == 200
    assert http.post("/v1/jobs", json={"text": TEXT, "speed": 99}).status_code == 422
    for token in (*wrong, revoked):
        for resp in (
            http.get("/v1/me", headers=as_key(token)),
            http.post("/v1/jobs", json={"text": TEXT}, headers=as_key(token)),
        ):
            assert resp.status_code == 401, resp.text
    assert http.get("/v1/me", headers=as_key(operator)).status_code == 200
    assert svc.stop() == 0

    log = svc.log()
    assert job_id in log and "job.queued" in log  # the log is not empty of what happened
    assert all(isinstance(json.loads(line), dict) for line in _lines(log))  # JSON lines
    for token in (admin, operator, revoked, *wrong):
        secret = token.split("_", 2)[2]
        assert secret not in log, f"a key's secret part is in the log:\n{log}"
        assert hashlib.sha256(token.encode()).hexdigest() not in log
    for needle in (TEXT, "Xanthippe", "Quixotic", "lighthouse 4471"):
        assert needle not in log, f"request text {needle!r} is in the log:\n{log}"


def test_the_server_header_names_no_software(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]]
) -> None:
    svc = start_service(service_env(ENGINE="fake"), "--no-workers", ready=False)
    answers: list[httpx.Response] = [
        svc.http.get("/healthz"),
        svc.http.get("/v1/me"),
        httpx.get(f"{svc.url}/v1/me", timeout=10),  # a 401
    ]
    for resp in answers:
        assert "uvicorn" not in resp.headers.get("server", "").lower(), resp.headers
