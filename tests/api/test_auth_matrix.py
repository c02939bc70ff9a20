"""Every operation in the OpenAPI schema, called without a key, with a bad, revoked or too weak
key, and with a sufficient one.

The operations are read from the app's own schema when the tests are collected, so a new route
is checked here the moment it exists; ``check_routes`` refuses to build an app with a route that
declares no role at all.
"""

from __future__ import annotations

import secrets
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from http_checks import error_of  # type: ignore[import-not-found]
from speech import reference_wav  # type: ignore[import-not-found]

from steadyvoice.api import keys as keys_routes
from steadyvoice.api.app import create_app
from steadyvoice.api.deps import Services
from steadyvoice.api.policy import OPEN_PATHS, ROLE, allow, check_routes
from steadyvoice.security.keys import NewKey
from steadyvoice.security.principal import Role
from steadyvoice.settings import Settings

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
ORDER = (Role.VIEWER, Role.OPERATOR, Role.ADMIN)  # each may do all the ones before it
# The open probes the schema lists; /metrics is open too but left out of the schema.
OPEN_IN_SCHEMA = {"GET /healthz", "GET /readyz"}

# Plausible values for path parameters: well-formed ids that name nothing.
PATH_VALUES: dict[str, Callable[[], str]] = {
    "job_id": lambda: uuid.uuid4().hex,
    "voice_id": lambda: f"vp_{uuid.uuid4().hex}",
    "key_id": lambda: f"key_{secrets.token_hex(6)}",
    "tenant": lambda: "matrix",
    "batch_id": lambda: uuid.uuid4().hex,
}
# Plausible bodies, by operation; a new operation with a body must add one here.
JSON_BODIES: dict[str, dict[str, Any]] = {
    "POST /v1/jobs": {"text": "Hello there."},
    "POST /v1/batches": {"items": [{"text": "Hello there."}]},
    "POST /v1/keys": {"role": "viewer", "tenant": "matrix", "name": "made by the matrix"},
    # A profile id that names nothing: answered at once (no worker runs here to wait for).
    "POST /v1/audio/speech": {"model": "tts-1", "input": "Hello there.", "voice": "vp_" + "0" * 32},
    "POST /v1/jobs/{job_id}/hold": {"reason": "case 1"},
    "POST /v1/tenants/{tenant}/hold": {"reason": "case 1"},
}
FORM_BODIES: dict[str, Callable[[], dict[str, Any]]] = {
    "POST /v1/voices": lambda: {
        "data": {"name": "Jane", "consent": "I, Jane Example, agree. 2026-11-25."},
        "files": {"audio": ("clip.wav", reference_wav(), "audio/wav")},
    },
}
GARBAGE = b"\x00\xff{not json--"


@dataclass(frozen=True)
class Operation:
    """One method on one path of the schema, with the least role it declares."""

    method: str
    template: str
    role: Role | None
    body: str | None  # the media type of its request body, if it takes one

    def __str__(self) -> str:
        return f"{self.method} {self.template}"

    def url(self) -> str:
        url = self.template
        for name in _path_params(self.template):
            if name not in PATH_VALUES:
                pytest.fail(f"{self}: add a plausible value for the path parameter {name!r}")
            url = url.replace(f"{{{name}}}", PATH_VALUES[name]())
        return url

    def plausible(self) -> dict[str, Any]:
        """Keyword arguments for a well-formed request body (none if it takes none)."""
        if self.body is None:
            return {}
        if self.body == "application/json" and str(self) in JSON_BODIES:
            return {"json": JSON_BODIES[str(self)]}
        if self.body == "multipart/form-data" and str(self) in FORM_BODIES:
            return FORM_BODIES[str(self)]()
        pytest.fail(f"{self}: add a plausible {self.body} body to this module")

    def garbage(self) -> dict[str, Any]:
        return {"content": GARBAGE, "headers": {"content-type": self.body or "application/json"}}


def _path_params(template: str) -> list[str]:
    return [part[1:-1] for part in template.split("/") if part.startswith("{")]


def operations(schema: dict[str, Any]) -> list[Operation]:
    ops = []
    for template, item in schema["paths"].items():
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue
            body = op.get("requestBody", {}).get("content", {})
            role = op.get(ROLE)
            ops.append(
                Operation(
                    method.upper(),
                    template,
                    Role(role) if role is not None else None,
                    next(iter(body), None),
                )
            )
    return ops


def _built_schema() -> dict[str, Any]:
    """The schema of an app built with default settings (no lifespan, nothing served)."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data",
            engine="fake",
            database_url=f"sqlite:///{Path(tmp) / 'schema.db'}",
        )
        app = create_app(settings, run_reaper=False)
        try:
            return app.openapi()
        finally:
            services_of(app).jobs.close()
            services_of(app).store.engine.dispose()


def services_of(app: Any) -> Services:
    svc: Services = cast(FastAPI, app).state.services
    return svc


SCHEMA = _built_schema()
OPERATIONS = operations(SCHEMA)
KEYED = [op for op in OPERATIONS if op.role is not None]
WITH_BODY = [op for op in KEYED if op.body is not None]
TOO_WEAK = [(op, low) for op in KEYED for low in ORDER[: ORDER.index(cast(Role, op.role))]]
ENOUGH = [(op, role) for op in KEYED for role in ORDER[ORDER.index(cast(Role, op.role)) :]]


@dataclass(frozen=True)
class Tokens:
    """A key of each role in tenant ``matrix``, and a revoked admin key."""

    by_role: dict[Role, str]
    revoked: str
    admin_id: str


@pytest.fixture
def tokens(client: TestClient) -> Tokens:
    keys = services_of(client.app).keys
    by_role = {r: keys.create(NewKey(r, "matrix", f"matrix {r}"), by="test").token for r in ORDER}
    doomed = keys.create(NewKey(Role.ADMIN, "matrix", "revoked admin"), by="test")
    keys.revoke(doomed.record.id, by="test")
    admin_id = keys.check(by_role[Role.ADMIN]).id
    return Tokens(by_role, doomed.token, admin_id)


def send(client: TestClient, method: str, url: str, token: str | None, **kwargs: Any) -> Any:
    """One call with exactly this key (``None``: no Authorization header at all)."""
    request = client.build_request(method, url, **kwargs)
    if token is None:
        del request.headers["authorization"]
    else:
        request.headers["authorization"] = f"Bearer {token}"
    return client.send(request)


def unauthorized(resp: Any, code: str) -> dict[str, Any]:
    err: dict[str, Any] = error_of(resp, 401, code)
    assert resp.headers["www-authenticate"].startswith('Bearer realm="steadyvoice"')
    return err


def ids(value: object) -> str:
    if isinstance(value, Operation):
        return str(value)
    return str(getattr(value, "value", value))


# --- the schema itself ------------------------------------------------------------------------


def test_the_schema_lists_the_routes_we_check() -> None:
    assert len(KEYED) >= 15  # the matrix below is not vacuous
    assert {"POST /v1/jobs", "DELETE /v1/keys/{key_id}", "GET /v1/audit", "GET /v1/workers"} <= {
        str(op) for op in KEYED
    }


def test_only_the_open_probes_declare_no_role() -> None:
    assert {str(op) for op in OPERATIONS if op.role is None} == OPEN_IN_SCHEMA
    assert {"/healthz", "/readyz", "/metrics"} == OPEN_PATHS
    assert "/metrics" not in SCHEMA["paths"]  # so it is checked explicitly below


def test_every_keyed_operation_names_the_bearer_scheme() -> None:
    scheme = SCHEMA["components"]["securitySchemes"]["apiKey"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    for op in OPERATIONS:
        declared = SCHEMA["paths"][op.template][op.method.lower()].get("security")
        assert declared == ([{"apiKey": []}] if op.role else None), op


def test_the_served_schema_is_the_one_checked_here(client: TestClient) -> None:
    served = client.get("/openapi.json")
    assert served.status_code == 200
    assert {str(op) for op in operations(served.json())} == {str(op) for op in OPERATIONS}


# --- the matrix -------------------------------------------------------------------------------


@pytest.mark.parametrize("op", KEYED, ids=ids)
def test_without_a_key_is_401_auth_required(client: TestClient, op: Operation) -> None:
    resp = send(client, op.method, op.url(), None, **op.plausible())
    unauthorized(resp, "auth_required")
    assert resp.headers["www-authenticate"] == 'Bearer realm="steadyvoice"'


@pytest.mark.parametrize("op", KEYED, ids=ids)
def test_a_revoked_key_is_401_key_revoked(
    client: TestClient, tokens: Tokens, op: Operation
) -> None:
    resp = send(client, op.method, op.url(), tokens.revoked, **op.plausible())
    unauthorized(resp, "key_revoked")


@pytest.mark.parametrize("op", KEYED, ids=ids)
def test_a_malformed_or_unknown_key_is_401_invalid_key(
    client: TestClient, tokens: Tokens, op: Operation
) -> None:
    admin = tokens.by_role[Role.ADMIN]
    public = tokens.admin_id.removeprefix("key_")
    bad_headers = [
        "Bearer sv_nothing",  # malformed
        f"Bearer sv_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}",  # well-formed, unknown
        f"Bearer sv_{public}_{secrets.token_urlsafe(32)}",  # a real key id, a wrong secret
        f"Bearer {admin}x",  # a real key with a byte too many
        f"Basic {admin}",  # not a bearer key
        "Bearer",
    ]
    for header in bad_headers:
        request = client.build_request(op.method, op.url(), **op.plausible())
        request.headers["authorization"] = header
        err = unauthorized(client.send(request), "invalid_key")
        assert admin not in str(err), header


@pytest.mark.parametrize(("op", "role"), TOO_WEAK, ids=ids)
def test_a_key_below_the_declared_role_is_403_forbidden(
    client: TestClient, tokens: Tokens, op: Operation, role: Role
) -> None:
    resp = send(client, op.method, op.url(), tokens.by_role[role], **op.plausible())
    err = error_of(resp, 403, "forbidden")
    assert err["role"] == role.value
    assert err["needed"] == cast(Role, op.role).value


@pytest.mark.parametrize(("op", "role"), ENOUGH, ids=ids)
def test_a_key_of_a_sufficient_role_gets_through(
    client: TestClient, tokens: Tokens, op: Operation, role: Role
) -> None:
    resp = send(client, op.method, op.url(), tokens.by_role[role], **op.plausible())
    assert resp.status_code not in (401, 403), resp.text
    assert resp.status_code < 500, resp.text


@pytest.mark.parametrize("op", WITH_BODY, ids=ids)
def test_auth_comes_before_the_body_is_read(
    client: TestClient, tokens: Tokens, op: Operation
) -> None:
    url = op.url()
    unauthorized(send(client, op.method, url, None, **op.garbage()), "auth_required")
    unauthorized(send(client, op.method, url, tokens.revoked, **op.garbage()), "key_revoked")
    unauthorized(send(client, op.method, url, "sv_nothing", **op.garbage()), "invalid_key")
    for low in ORDER[: ORDER.index(cast(Role, op.role))]:
        error_of(
            send(client, op.method, url, tokens.by_role[low], **op.garbage()), 403, "forbidden"
        )
    # Only a sufficient key learns that the body is bad.
    resp = send(client, op.method, url, tokens.by_role[Role.ADMIN], **op.garbage())
    assert resp.status_code == 422, resp.text


# --- what is open, and what is not there ------------------------------------------------------


def test_the_three_probes_answer_without_a_key(client: TestClient) -> None:
    assert send(client, "GET", "/healthz", None).json() == {"status": "ok"}
    ready = send(client, "GET", "/readyz", None)
    assert ready.status_code in (200, 503)  # no worker here: not ready, but answered
    assert set(ready.json()) >= {"status", "reasons"}
    metrics = send(client, "GET", "/metrics", None)
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "steadyvoice_" in metrics.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/nothing"),
        ("GET", "/v1/jobs/abc/nothing"),
        ("POST", "/v1/nothing"),
        ("GET", "/docs"),
        ("GET", "/redoc"),
        ("GET", "/healthz/x"),
        ("DELETE", "/v1/jobs"),  # a known path, a method it does not take
    ],
)
def test_paths_that_do_not_exist_need_a_key_first(
    client: TestClient, tokens: Tokens, method: str, path: str
) -> None:
    unauthorized(send(client, method, path, None), "auth_required")
    unauthorized(send(client, method, path, "sv_nothing"), "invalid_key")
    resp = send(client, method, path, tokens.by_role[Role.VIEWER])
    assert resp.status_code in (404, 405), resp.text


def test_the_schema_needs_a_key(client: TestClient, tokens: Tokens) -> None:
    unauthorized(send(client, "GET", "/openapi.json", None), "auth_required")
    unauthorized(send(client, "GET", "/openapi.json", tokens.revoked), "key_revoked")
    assert send(client, "GET", "/openapi.json", tokens.by_role[Role.VIEWER]).status_code == 200


# --- a route that declares no role cannot be built --------------------------------------------


def _undeclared(router: APIRouter | FastAPI) -> None:
    @router.get("/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {}


def test_check_routes_refuses_a_route_without_a_role() -> None:
    app = FastAPI()
    _undeclared(app)
    with pytest.raises(RuntimeError, match="/v1/forgotten"):
        check_routes(app)


def test_check_routes_refuses_one_inside_an_included_router() -> None:
    app = FastAPI()
    router = APIRouter()
    _undeclared(router)
    app.include_router(router)
    with pytest.raises(RuntimeError, match="/v1/forgotten"):
        check_routes(app)


def test_check_routes_passes_declared_routes_and_the_probes() -> None:
    app = FastAPI()
    router = APIRouter()

    @router.get("/v1/declared", openapi_extra=allow(Role.VIEWER))
    def declared() -> dict[str, str]:
        return {}

    @router.get("/healthz")
    def healthz() -> dict[str, str]:
        return {}

    app.include_router(router)
    check_routes(app)


def test_create_app_refuses_a_route_without_a_role(
    monkeypatch: pytest.MonkeyPatch, settings_factory: Callable[..., Settings]
) -> None:
    router = APIRouter()
    for route in keys_routes.me_router.routes:
        router.routes.append(route)
    _undeclared(router)
    monkeypatch.setattr(keys_routes, "me_router", router)
    with pytest.raises(RuntimeError, match="/v1/forgotten"):
        create_app(settings_factory(), run_reaper=False)
