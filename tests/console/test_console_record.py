"""The record's pages in process: filter, tenant scope, the job page, the CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import pytest
from factories import RESULT, new_job  # type: ignore[import-not-found]
from fastapi.testclient import TestClient
from pages_client import new_key, services_of, sign_in  # type: ignore[import-not-found]

from steadyvoice.jobs.models import Job
from steadyvoice.jobs.store import Claim
from steadyvoice.security.principal import Role


def _job(client: TestClient, text: str, tenant: str, requester: str) -> Job:
    job, _ = services_of(client).store.create(new_job(text, tenant=tenant, requester=requester))
    return job


@pytest.fixture
def client(client_factory: Callable[..., TestClient]) -> TestClient:
    return client_factory()


def test_the_filter_finds_a_job_by_a_word_and_the_export_has_its_row(client: TestClient) -> None:
    wanted = _job(client, "Your March statement is ready.", "bank", "key_aaaaaaaaaaaa")
    _job(client, "Good morning, class.", "school", "key_bbbbbbbbbbbb")
    sign_in(client, new_key(client, Role.ADMIN, "default"))

    page = client.get("/ui/record", params={"text": "march"})
    assert page.status_code == 200
    assert f'data-job="{wanted.id}"' in page.text and "Good morning" not in page.text
    assert 'id="f-tenant"' in page.text  # an admin filters by tenant

    export = client.get("/ui/record/export.csv", params={"text": "march"})
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert "attachment" in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [(r["id"], r["text"], r["tenant"]) for r in rows] == [
        (wanted.id, "Your March statement is ready.", "bank")
    ]
    audit = client.get("/ui/admin/audit", params={"action": "console.record.export"})
    assert "console.record.export" in audit.text


def test_a_tenant_sees_only_its_own_and_another_tenants_job_is_404(client: TestClient) -> None:
    theirs = _job(client, "Bank statement for March.", "bank", "key_aaaaaaaaaaaa")
    ours = _job(client, "A March school trip.", "school", "key_bbbbbbbbbbbb")
    sign_in(client, new_key(client, Role.VIEWER, "school"))

    page = client.get("/ui/record", params={"text": "march", "tenant": "bank"})
    assert f'data-job="{ours.id}"' in page.text and theirs.id not in page.text
    assert 'id="f-tenant"' not in page.text
    assert theirs.id not in client.get("/ui/record/export.csv", params={"tenant": "bank"}).text

    missing = client.get(f"/ui/record/{theirs.id}")
    assert missing.status_code == 404 and "job_not_found" in missing.text
    assert client.get(f"/ui/record/{ours.id}").status_code == 200


def test_the_job_page_checks_the_file_and_shows_the_trail(client: TestClient) -> None:
    services = services_of(client)
    job = _job(client, "Checked twice.", "default", "key_aaaaaaaaaaaa")
    claim = services.store.claim("w1", 30.0)
    assert isinstance(claim, Claim)
    services.storage.put(job.output_name, b"RIFF fake audio")
    services.store.complete(claim, RESULT)
    sign_in(client, new_key(client, Role.ADMIN, "default"))
    client.get(f"/ui/jobs/{job.id}/download")  # an audited action on the job

    page = client.get(f"/ui/record/{job.id}", params={"back": "/ui/record?text=twice"})
    assert page.status_code == 200
    assert 'data-state="corrupt"' in page.text  # RESULT records another checksum
    assert 'href="/ui/record?text=twice"' in page.text
    assert "job.audio.download" in page.text  # the audit trail
    hostile = client.get(f"/ui/record/{job.id}", params={"back": "https://evil.example/"})
    assert "evil.example" not in hostile.text


def test_a_bad_filter_says_which_field(client: TestClient) -> None:
    sign_in(client, new_key(client, Role.VIEWER, "default"))
    page = client.get("/ui/record", params={"from": "3 March"})
    assert page.status_code == 422
    assert "from must be a date" in page.text and 'id="record-table"' not in page.text
    assert client.get("/ui/record", params={"cursor": "junk"}).status_code == 422
