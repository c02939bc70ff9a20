"""What a browser asks for on its own costs nothing: no failed sign-ins, no audit rows.

The icon browsers fetch from every site's root is answered without a key and not counted as a
failed authentication; a job page's player fetches nothing until it is played, so showing a
job writes no ``job.audio.play`` row, and a play writes one.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from factories import RESULT, new_job  # type: ignore[import-not-found]
from fastapi.testclient import TestClient
from pages_client import new_key, services_of, sign_in  # type: ignore[import-not-found]

from steadyvoice.jobs.store import Claim
from steadyvoice.security.audit import AuditQuery
from steadyvoice.security.principal import Role
from steadyvoice.settings import SecuritySettings

Factory = Callable[..., TestClient]


def test_the_favicon_needs_no_key_and_is_no_failed_sign_in(client_factory: Factory) -> None:
    client = client_factory(security=SecuritySettings(failed_auth_per_minute=3))
    client.headers.pop("Authorization", None)
    for _ in range(5):  # more than the failed-auth limit allows
        r = client.get("/favicon.ico", follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (301, "/ui/static/favicon.svg")
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    signin = client.get("/ui/signin")
    assert '<link rel="icon" href="/ui/static/favicon.svg"' in signin.text
    sign_in(client, new_key(client, Role.VIEWER, "default"))  # not auth_rate_limited
    assert client.get("/ui/record").status_code == 200


def test_showing_a_job_plays_nothing_and_a_play_is_one_audit_row(client_factory: Factory) -> None:
    client = client_factory()
    services = services_of(client)
    job, _ = services.store.create(new_job("Heard once.", tenant="default"))
    claim = services.store.claim("w1", 30.0)
    assert isinstance(claim, Claim)
    services.storage.put(job.output_name, b"RIFF fake audio")
    services.store.complete(claim, RESULT)
    sign_in(client, new_key(client, Role.VIEWER, "default"))

    def plays() -> int:
        rows = services.audit.query(AuditQuery(object_id=job.id, limit=50))
        return sum(e.action == "job.audio.play" for e in rows)

    for path in (f"/ui/record/{job.id}", f"/ui/jobs/{job.id}/panel"):
        page = client.get(path)
        assert page.status_code == 200, page.text
        players = re.findall(r"<audio[^>]*>", page.text)
        assert players and all('preload="none"' in p for p in players), players
    assert plays() == 0
    assert client.get(f"/ui/jobs/{job.id}/audio").status_code == 200
    assert plays() == 1
