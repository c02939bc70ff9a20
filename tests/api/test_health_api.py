"""Probes, request ids and the published schema of the in-process API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from processes import use_admin_key  # type: ignore[import-not-found]

from steadyvoice.api.app import create_app
from steadyvoice.api.deps import Services
from steadyvoice.jobs.liveness import BUSY, LOADING, READY, STOPPING
from steadyvoice.settings import Settings


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", engine="fake", storage={"min_free_disk_mb": 0})
    with TestClient(create_app(settings, run_reaper=False)) as started:
        yield use_admin_key(started, settings.data_dir)


def services(client: TestClient) -> Services:
    svc: Services = cast(FastAPI, client.app).state.services
    return svc


def test_healthz(client: TestClient) -> None:
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}


def test_readyz_is_503_without_a_live_worker(client: TestClient) -> None:
    resp = client.get("/readyz")
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] == "not_ready"
    assert body["workers"] == 0
    assert len(body["reasons"]) == 1
    assert body["reasons"][0].startswith("no_live_worker")
    assert isinstance(body["free_disk_mb"], int)


@pytest.mark.parametrize("state", [LOADING, STOPPING])
def test_readyz_needs_a_worker_with_its_engine_loaded(client: TestClient, state: str) -> None:
    registry = services(client).workers
    registry.register("box:1", "fake")
    registry.beat("box:1", state, None, 0)
    assert client.get("/readyz").status_code == 503


@pytest.mark.parametrize("state", [READY, BUSY])
def test_readyz_is_200_once_a_worker_is_ready(client: TestClient, state: str) -> None:
    registry = services(client).workers
    registry.register("box:1", "fake")
    registry.beat("box:1", state, None, 0)
    resp = client.get("/readyz")
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "ready"
    assert resp.json()["reasons"] == []
    assert resp.json()["workers"] == 1
    registry.remove("box:1")
    assert client.get("/readyz").status_code == 503


def test_readyz_reports_low_disk(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", engine="fake", storage={"min_free_disk_mb": 10**12}
    )
    with TestClient(create_app(settings, run_reaper=False)) as client:
        registry = services(client).workers
        registry.register("box:1", "fake")
        registry.beat("box:1", READY, None, 0)
        resp = client.get("/readyz")
    assert resp.status_code == 503
    assert [r.split(":")[0] for r in resp.json()["reasons"]] == ["low_disk"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthz", 200),
        ("GET", "/v1/jobs", 200),
        ("GET", "/v1/jobs/unknown", 404),
        ("GET", "/nowhere", 404),
    ],
)
def test_a_given_request_id_is_echoed(
    client: TestClient, method: str, path: str, status: int
) -> None:
    resp = client.request(method, path, headers={"X-Request-ID": "trace-42.a_b"})
    assert resp.status_code == status
    assert resp.headers["x-request-id"] == "trace-42.a_b"
    if status >= 400:
        assert resp.json()["error"]["request_id"] == "trace-42.a_b"


@pytest.mark.parametrize("given", [None, "has spaces", "x" * 65, "semi;colon"])
def test_a_request_id_is_generated_when_missing_or_unsafe(
    client: TestClient, given: str | None
) -> None:
    headers = {} if given is None else {"X-Request-ID": given}
    first = client.get("/v1/jobs/unknown", headers=headers)
    second = client.get("/v1/jobs/unknown", headers=headers)
    rid = first.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    assert first.json()["error"]["request_id"] == rid
    assert second.headers["x-request-id"] != rid


def test_the_openapi_schema_lists_the_routes(client: TestClient) -> None:
    resp = client.get("/openapi.json")
    assert resp.status_code == 200
    schema: dict[str, Any] = resp.json()
    paths = schema["paths"]
    assert set(paths["/v1/jobs"]) == {"get", "post"}
    assert set(paths["/v1/jobs/{job_id}"]) == {"get"}
    assert set(paths["/v1/jobs/{job_id}/audio"]) == {"get"}
    assert set(paths["/v1/jobs/{job_id}/cancel"]) == {"post"}
    assert {"/healthz", "/readyz"} <= set(paths)
    post = paths["/v1/jobs"]["post"]
    assert "202" in post["responses"]
    assert {"404", "409", "413", "422"} <= set(post["responses"])
    assert "Idempotency-Key" in post["description"]
    assert "audio/wav" in paths["/v1/jobs/{job_id}/audio"]["get"]["responses"]["200"]["content"]
    assert "JobCreate" in schema["components"]["schemas"]
