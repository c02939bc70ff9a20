"""Admin, Service and Batches pages in process: roles, a key shown once, charts, uploads."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from pages_client import csrf_of, new_key, services_of, sign_in  # type: ignore[import-not-found]

from steadyvoice.observability.models import Incident
from steadyvoice.security.principal import Role

TOKEN = re.compile(r'id="issued-token" readonly value="(sv_[^"]+)"')


@pytest.fixture
def client(client_factory: Callable[..., TestClient]) -> TestClient:
    return client_factory()


def test_admin_pages_are_refused_to_a_viewer_and_an_operator(client: TestClient) -> None:
    for role in (Role.VIEWER, Role.OPERATOR):
        csrf = sign_in(client, new_key(client, role, "bank"))
        assert "/ui/admin" not in client.get("/ui/record").text  # not in the nav
        for path in ("/ui/admin", "/ui/admin/audit"):
            refused = client.get(path)
            assert refused.status_code == 403 and "forbidden" in refused.text
        forged = client.post(
            "/ui/admin/keys", data={"csrf_token": csrf, "role": "admin", "tenant": "bank"}
        )
        assert forged.status_code == 403
    assert services_of(client).keys.count() == 3  # the bootstrap admin and the two above


def test_a_new_key_is_shown_once_and_can_be_revoked(client: TestClient) -> None:
    csrf = sign_in(client, new_key(client, Role.ADMIN, "default"))
    made = client.post(
        "/ui/admin/keys",
        data={"csrf_token": csrf, "role": "operator", "tenant": "bank", "name": "ops"},
    )
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    token = TOKEN.search(made.text)
    assert token is not None
    key = services_of(client).keys.check(token.group(1))
    assert (key.role, key.tenant, key.name) == ("operator", "bank", "ops")
    assert token.group(1) not in client.get("/ui/admin").text  # never again

    no_csrf = client.post(f"/ui/admin/keys/{key.id}/revoke")
    assert no_csrf.status_code == 403 and services_of(client).keys.get(key.id).revoked_at is None
    revoked = client.post(
        f"/ui/admin/keys/{key.id}/revoke", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert revoked.status_code == 303
    assert services_of(client).keys.get(key.id).revoked_at is not None

    bad = client.post("/ui/admin/keys", data={"csrf_token": csrf, "role": "x", "tenant": "B!"})
    assert bad.status_code == 422 and "role must be one of" in bad.text

    audit = client.get("/ui/admin/audit", params={"action": "key.revoke"})
    assert audit.status_code == 200 and key.id in audit.text
    assert "key.create" not in audit.text  # filtered
    assert client.get("/ui/admin/audit", params={"since": "May"}).status_code == 422


def test_the_service_page_shows_slo_charts_to_admins_only(client: TestClient) -> None:
    start = datetime.now(UTC) - timedelta(minutes=10)
    down = Incident(
        id="i1",
        reason="store_down",
        detected_by="test",
        started_at=start,
        ended_at=start + timedelta(seconds=250),
    )
    with services_of(client).store.session() as s:
        s.add(down)
    sign_in(client, new_key(client, Role.ADMIN, "default"))
    page = client.get("/ui/service")
    assert page.status_code == 200
    assert "store_down" in page.text and "recovered in 4 min 10 s" in page.text
    for chart in ("queue", "availability", "latency", "budget-availability", "incidents"):
        assert f'id="chart-{chart}" role="img"' in page.text
    assert 'id="readiness" data-status="not_ready"' in page.text  # no worker in process

    sign_in(client, new_key(client, Role.VIEWER, "bank"))
    page = client.get("/ui/service")
    assert 'id="chart-queue"' in page.text and 'id="chart-availability"' not in page.text
    assert 'id="slo-admin-only"' in page.text


def test_a_batch_upload_is_checked_queued_and_followed(client: TestClient) -> None:
    viewer_csrf = sign_in(client, new_key(client, Role.VIEWER, "bank"))
    assert 'id="batch-form"' not in client.get("/ui/batches").text
    files = {"file": ("items.csv", b"text\nHello.\n", "text/csv")}
    refused = client.post("/ui/batches", data={"csrf_token": viewer_csrf}, files=files)
    assert refused.status_code == 403

    csrf = sign_in(client, new_key(client, Role.OPERATOR, "bank"))
    bad = {"file": ("items.csv", b"text,speed\nHello.,9\n,1\n", "text/csv")}
    page = client.post("/ui/batches", data={"csrf_token": csrf}, files=bad)
    assert page.status_code == 422 and 'id="batch-errors"' in page.text
    assert "Row 1" in page.text and "Row 2" in page.text

    good = {"file": ("items.csv", b"text,name\nHello.,a\nGoodbye.,b\n", "text/csv")}
    made = client.post("/ui/batches", data={"csrf_token": csrf}, files=good, follow_redirects=False)
    assert made.status_code == 303
    batch_page = client.get(made.headers["location"])
    assert 'data-status="queued"' in batch_page.text and "data-poll=" in batch_page.text
    batch_id = made.headers["location"].rsplit("/", 1)[1]
    part = client.get(f"/ui/batches/{batch_id}/progress")
    assert part.text.lstrip().startswith("<section") and "0 of 2 finished" in part.text
    archive = client.get(f"/ui/batches/{batch_id}/archive")
    assert archive.status_code == 200 and archive.content[:2] == b"PK"

    sign_in(client, new_key(client, Role.VIEWER, "school"))
    assert client.get(made.headers["location"]).status_code == 404
    assert csrf_of(client.get("/ui/batches").text)
