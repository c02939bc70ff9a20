"""The whole API fuzzed from its own OpenAPI schema (schemathesis) with a valid admin key.

Every operation gets valid and invalid inputs (schemathesis' ``all`` mode, in its examples,
coverage and fuzzing phases). Every answer must not be a 5xx, must be a documented status with
its documented content type, body and headers, and must pass the other built-in checks
(invalid input refused, auth enforced, ``Allow`` on 405, ...). The key is the one a first start
writes to ``<data_dir>/admin.key``; the fuzzed app is the next start on the same data dir.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from processes import admin_key  # type: ignore[import-not-found]
from schemathesis.checks import not_a_server_error
from starlette.types import Receive, Scope, Send

from steadyvoice.api.app import create_app
from steadyvoice.settings import Settings

# No 429s from our own fuzzing: limits far above what one run sends.
UNLIMITED = {"rate_per_minute": 1_000_000, "max_in_flight": 1_000_000}
# No worker runs: a fully valid speech request is answered 503 no_live_worker at once (a
# documented answer, never a 5xx the checks would count); were one alive, it would not wait.
NO_WAIT = {"wait_seconds": 0.05}


def served_schema() -> dict[str, Any]:
    """What ``/openapi.json`` serves. It depends on the routes only, so an app that is never
    started, on a throwaway dir, gives it; each test checks that its own app serves the same."""
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir), engine="fake", database_url=None)
        return create_app(settings, run_reaper=False).openapi()


class AppUnderTest:
    """The ASGI app schemathesis calls: the schema is loaded once, at import, and each test
    points this at its own freshly built app (schemathesis runs that app's lifespan)."""

    def __init__(self) -> None:
        self.app: FastAPI | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "no app under test"
        await self.app(scope, receive, send)


CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20_240_404,
        "generation": {
            "mode": "all",
            "max-examples": 25,
            "deterministic": True,
            "database": "none",
            # The key is ours (sent with every call); schemathesis still probes without it.
            "with-security-parameters": False,
        },
        "checks": {
            # Schema-valid but refused is often right here: audio that is not speech, a window
            # over 366 days. Invalid input must still be refused (negative_data_rejection).
            "positive_data_acceptance": {"enabled": False},
            # Schemathesis' default list plus 413: a body over the request limit is refused
            # before it is parsed (a 5xx is reported by not_a_server_error instead).
            "negative_data_rejection": {
                "expected-statuses": [
                    *("400", "401", "403", "404", "405", "406", "409", "413", "415", "422"),
                    *("428", "429", "5xx"),
                ]
            },
        },
        "operations": [
            {
                # Unknown query parameters are ignored, as HTTP APIs commonly do; unknown
                # body fields are still refused (and tested) on the POST routes.
                "include-method": ["GET", "DELETE"],
                "generation": {"allow-extra-parameters": False},
            },
            {
                # No worker runs here, so readiness honestly answers its documented 503.
                "include-path": "/readyz",
                "checks": {
                    "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]}
                },
            },
        ],
    }
)
TARGET = AppUnderTest()
schema = schemathesis.openapi.from_dict(served_schema(), config=CONFIG)
schema.app = TARGET


def start_api(settings: Settings) -> Iterator[dict[str, str]]:
    """First start (as the quickstart does) writes the admin key; the fuzzed app is the next.
    Yields the headers that carry the key."""
    with TestClient(create_app(settings, run_reaper=False)) as first:
        token = admin_key(settings.data_dir)
        assert token is not None, "the first start wrote no admin key"
        headers = {"Authorization": f"Bearer {token}"}
        assert first.get("/openapi.json", headers=headers).json() == schema.raw_schema
    TARGET.app = create_app(settings, run_reaper=False)
    try:
        yield headers
    finally:
        TARGET.app = None


@pytest.fixture
def sqlite_api(settings_factory: Callable[..., Settings]) -> Iterator[dict[str, str]]:
    yield from start_api(settings_factory(security=UNLIMITED, speech=NO_WAIT))


@pytest.fixture
def pg_api(settings_factory: Callable[..., Settings], pg_url: str) -> Iterator[dict[str, str]]:
    yield from start_api(settings_factory(database_url=pg_url, security=UNLIMITED, speech=NO_WAIT))


# One app per operation, shared by its examples on purpose; uploads and big bodies are slow.
SHARED_APP = [
    HealthCheck.function_scoped_fixture,
    HealthCheck.too_slow,
    HealthCheck.filter_too_much,
    HealthCheck.data_too_large,
]


@schema.parametrize()
@settings(suppress_health_check=SHARED_APP)
def test_every_operation_on_sqlite(
    case: schemathesis.Case[Any], sqlite_api: dict[str, str]
) -> None:
    _call_and_validate(case, sqlite_api)


@schema.parametrize()
@settings(suppress_health_check=SHARED_APP, max_examples=8)
def test_every_operation_on_postgresql(
    case: schemathesis.Case[Any], pg_api: dict[str, str]
) -> None:
    _call_and_validate(case, pg_api)


def _call_and_validate(case: schemathesis.Case[Any], headers: dict[str, str]) -> None:
    """Every check; a speech call refused for want of a worker (none runs here) is the
    documented 503 ``no_live_worker`` (or, were one alive, 504 ``speech_timeout``), not a
    server error."""
    response = case.call(headers=headers)
    waited_out = (response.status_code, _code(response.text)) in NO_WORKER_ANSWERS
    case.validate_response(response, excluded_checks=[not_a_server_error] if waited_out else None)


NO_WORKER_ANSWERS = {(503, "no_live_worker"), (504, "speech_timeout")}


def _code(text: str) -> str | None:
    try:
        code = json.loads(text)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
    return code if isinstance(code, str) else None


# Values fuzzing may take long to hit; each once crashed, or could crash, a route or a store.
HOSTILE = [
    ("GET", "/v1/jobs/%00", 404),
    ("GET", "/v1/jobs/%00/audio", 404),
    ("POST", "/v1/jobs/%00/cancel", 404),
    ("GET", "/v1/jobs/" + "9" * 4000, 404),
    ("GET", "/v1/voices/%00", 404),
    ("DELETE", "/v1/voices/%00", 404),
    ("GET", "/v1/voices/%00/reference", 404),
    ("GET", "/v1/keys/%00", 404),
    ("DELETE", "/v1/keys/%00", 404),
    ("GET", "/v1/jobs?cursor=%00", 422),
    ("GET", "/v1/jobs?limit=99999999999999999999999", 422),
    ("GET", "/v1/jobs?created_after=0.5", 422),
    ("GET", "/v1/jobs?created_before=0001-01-01T00:00:00%2B00:01", 422),
    ("GET", "/v1/audit?until=9999-12-31T23:59:59-00:01", 422),
    ("GET", "/v1/audit?object_id=a%00", 422),
    ("GET", "/v1/audit?cursor=999999999999999999", 200),
    ("GET", "/v1/slo?end=0001-01-02T00:00:00Z&window=30d", 422),
    ("GET", "/v1/slo?end=0001-02-01T00:00:00%2B23:59&window=30d", 200),
]


def test_hostile_values_get_a_clean_answer_not_a_500(
    db_url: str, client_factory: Callable[..., TestClient]
) -> None:
    client = client_factory(database_url=db_url)
    answers = [(m, p, client.request(m, p).status_code, want) for m, p, want in HOSTILE]
    nul_key = client.post("/v1/jobs", json={"text": "Hi."}, headers={"Idempotency-Key": "a\0b"})
    answers.append(("POST", "/v1/jobs Idempotency-Key: a\\0b", nul_key.status_code, 422))
    assert [a for a in answers if a[2] != a[3]] == []
