"""When the job store goes away, the API says so with 503s, never a 500 or a trace."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from fastapi.testclient import TestClient
from processes import use_admin_key  # type: ignore[import-not-found]

from steadyvoice.api.app import create_app
from steadyvoice.settings import Settings


def test_database_outage_gives_503_store_unavailable(
    pg_url: str, pg_admin_url: str, settings_factory: Callable[..., Settings]
) -> None:
    settings = settings_factory(database_url=pg_url)
    app = create_app(settings, run_reaper=False)
    with TestClient(app) as client:
        use_admin_key(client, settings.data_dir)
        assert client.post("/v1/jobs", json={"text": "before the outage"}).status_code == 202
        name = pg_url.rsplit("/", 1)[1]
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        r = client.post("/v1/jobs", json={"text": "during the outage"})
        assert r.status_code == 503
        assert r.headers["Retry-After"] == "5"
        assert r.json()["error"]["code"] == "store_unavailable"
        assert "Traceback" not in r.text
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert any(x.startswith("database_unreachable") for x in ready.json()["reasons"])
        assert client.get("/healthz").status_code == 200
