"""Text no database or voice can take is refused with 422 ``text_invalid``, on both backends."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from processes import use_admin_key  # type: ignore[import-not-found]

from steadyvoice.api.app import create_app
from steadyvoice.settings import Settings


@pytest.mark.parametrize(
    ("raw_json", "position"),
    [
        ('{"text": "a\\u0000b"}', 1),
        ('{"text": "bell \\u0007"}', 5),
        ('{"text": "del \\u007f"}', 4),
    ],
)
def test_control_characters_are_refused(
    db_url: str, settings_factory: Callable[..., Settings], raw_json: str, position: int
) -> None:
    settings = settings_factory(database_url=db_url)
    app = create_app(settings, run_reaper=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        use_admin_key(client, settings.data_dir)
        r = client.post("/v1/jobs", content=raw_json, headers={"content-type": "application/json"})
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "text_invalid" and error["position"] == position
        assert client.get("/v1/jobs").json()["items"] == []


def test_a_lone_surrogate_is_refused_as_invalid_json(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory()
    app = create_app(settings, run_reaper=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        use_admin_key(client, settings.data_dir)
        body = '{"text": "lone \\ud800 surrogate"}'
        r = client.post("/v1/jobs", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "invalid_request"


def test_tabs_and_newlines_are_fine(db_url: str, settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(database_url=db_url)
    app = create_app(settings, run_reaper=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        use_admin_key(client, settings.data_dir)
        r = client.post("/v1/jobs", json={"text": "line one.\n\tline two.\r\nthree"})
        assert r.status_code == 202, r.text


def test_a_body_that_is_not_utf8_is_422(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    app = create_app(settings, run_reaper=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        use_admin_key(client, settings.data_dir)
        body = b"h\xff\xfe\x000|\xd9\x9b"
        r = client.post("/v1/jobs", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "invalid_request"
