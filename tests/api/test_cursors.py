"""Crafted page cursors on every list route: 422 ``invalid_cursor`` (field ``cursor``), never
a 500, whatever the text (issue 22, item 3). The audit log's cursor is a row number, checked
by its pattern."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from http_checks import error_of  # type: ignore[import-not-found]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steadyvoice.api.cursor import decode_cursor, encode_cursor

ROUTES = ["/v1/jobs", "/v1/voices", "/v1/keys"]
JOB_ID, VOICE_ID, KEY_ID = "0" * 32, "vp_" + "0" * 32, "key_" + "0" * 12


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


# Times with no UTC equivalent (OverflowError on conversion), each with every kind of id.
OUT_OF_RANGE = [
    "0001-01-01T00:00:00+05:00",
    "0001-01-01T00:00:00+00:01",
    "9999-12-31T23:59:59-05:00",
    "9999-12-31T23:59:59.999999-00:01",
]
MALFORMED = [
    "%%%",
    "a" * 10_000,
    b64("2026-01-01T00:00:00+00:00"),  # no id
    b64(f"2026-01-01T00:00:00|{JOB_ID}"),  # no time zone
    b64(f"2026-13-01T00:00:00+00:00|{JOB_ID}"),
    b64(f"2026-01-01T00:00:00+24:00|{JOB_ID}"),
    b64(f"2026-01-01T00:00:00+00:00|{JOB_ID}\n"),
    b64("2026-01-01T00:00:00+00:00|' OR 1=1 --"),
    base64.urlsafe_b64encode(b"\xff\xfe|" + JOB_ID.encode()).decode(),
]


@pytest.fixture(scope="module")
def shared_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One started app (admin key) for the module: cursors never write anything."""
    from processes import admin_key  # type: ignore[import-not-found]

    from steadyvoice.api.app import create_app
    from steadyvoice.settings import Settings

    data_dir = tmp_path_factory.mktemp("cursors") / "data"
    app = create_app(Settings(data_dir=data_dir, engine="fake", workers=1), run_reaper=False)
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {admin_key(data_dir)}"
        yield client


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("at", OUT_OF_RANGE)
def test_a_time_with_no_utc_equivalent_is_422(
    shared_client: TestClient, route: str, at: str
) -> None:
    for item_id in (JOB_ID, VOICE_ID, KEY_ID):
        resp = shared_client.get(route, params={"cursor": b64(f"{at}|{item_id}")})
        assert error_of(resp, 422, "invalid_cursor")["field"] == "cursor"


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("cursor", MALFORMED)
def test_a_malformed_cursor_is_422(shared_client: TestClient, route: str, cursor: str) -> None:
    resp = shared_client.get(route, params={"cursor": cursor})
    assert error_of(resp, 422, "invalid_cursor")["field"] == "cursor"


@pytest.mark.parametrize("route", ROUTES)
def test_the_extremes_that_have_a_utc_time_are_pages(shared_client: TestClient, route: str) -> None:
    for at in ("0001-01-01T00:00:00-05:00", "9999-12-31T23:59:59+05:00"):
        for item_id in (JOB_ID, VOICE_ID, KEY_ID):
            resp = shared_client.get(route, params={"cursor": b64(f"{at}|{item_id}")})
            assert resp.status_code == 200, resp.text


def test_a_decoded_cursor_is_in_utc() -> None:
    at, item_id = decode_cursor(b64(f"2026-01-01T05:30:00+05:30|{JOB_ID}"))
    assert at.isoformat() == "2026-01-01T00:00:00+00:00" and item_id == JOB_ID
    assert decode_cursor(encode_cursor(at, KEY_ID)) == (at, KEY_ID)


CRAFTED = st.one_of(
    st.text(max_size=300),
    st.builds(
        lambda dt, off, item: b64(f"{dt.isoformat()}{off}|{item}"),
        st.datetimes(),
        st.sampled_from(["", "Z", "+00:00", "+23:59", "-23:59", "+05:00", "-00:01", "+99:00"]),
        st.sampled_from([JOB_ID, VOICE_ID, KEY_ID, "", "x"]),
    ),
    st.binary(max_size=120).map(lambda raw: base64.urlsafe_b64encode(raw).decode()),
)


@pytest.mark.parametrize("route", [*ROUTES, "/v1/audit"])
@given(cursor=CRAFTED)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_cursor_is_a_page_or_a_422(shared_client: TestClient, route: str, cursor: str) -> None:
    resp = shared_client.get(route, params={"cursor": cursor})
    assert resp.status_code in (200, 422), resp.text
    if resp.status_code == 422:
        code = "invalid_request" if route == "/v1/audit" else "invalid_cursor"
        error = error_of(resp, 422, code)
        assert route == "/v1/audit" or error["field"] == "cursor"
