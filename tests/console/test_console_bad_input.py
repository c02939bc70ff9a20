"""Console input that cannot be a value: a 422 page naming the field, never a 500 or a
download that dies after its 200."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from fastapi.testclient import TestClient
from pages_client import new_key, sign_in  # type: ignore[import-not-found]

from steadyvoice.console.form_values import LAST_DAY, day, whole_number
from steadyvoice.errors import InvalidRequest
from steadyvoice.security.principal import Role

BAD_READS = [
    ("/ui/record", {"to": "9999-12-31"}, "to"),
    ("/ui/record", {"from": "2026-W49-1"}, "from"),
    ("/ui/record", {"from": "2026-03-04", "to": "2026-03-03"}, "to"),
    ("/ui/record/export.csv", {"to": "9999-12-31"}, "to"),
    ("/ui/record/export.csv", {"from": "²⁰²⁶-01-01"}, "from"),
    ("/ui/admin/audit", {"until": "9999-12-31"}, "until"),
    ("/ui/admin/audit", {"since": "20260304"}, "since"),
    ("/ui/admin/audit", {"before": "²"}, "before"),
    ("/ui/admin/audit", {"before": "١٢"}, "before"),
]


def _is_error_page(answer: object, field: str) -> None:
    status = getattr(answer, "status_code", None)
    text = str(getattr(answer, "text", ""))
    headers = getattr(answer, "headers", {})
    assert status == 422, (status, text[:300])
    assert headers["content-type"].startswith("text/html"), headers["content-type"]
    assert "invalid_request" in text and field in text, text[:1500]


@pytest.fixture
def admin(client_factory: Callable[..., TestClient]) -> tuple[TestClient, str]:
    client = client_factory()
    return client, sign_in(client, new_key(client, Role.ADMIN, "default"))


def test_bad_filters_are_a_422_page_naming_the_field(admin: tuple[TestClient, str]) -> None:
    client, _ = admin
    for path, params, field in BAD_READS:
        _is_error_page(client.get(path, params=params), field)
    # The edge that is allowed still answers.
    assert client.get("/ui/record", params={"to": LAST_DAY.isoformat()}).status_code == 200
    export = client.get("/ui/record/export.csv", params={"to": LAST_DAY.isoformat()})
    assert export.status_code == 200 and export.text.startswith("id,")
    assert client.get("/ui/admin/audit", params={"until": "9999-12-30"}).status_code == 200


def test_bad_numbers_in_forms_are_a_422_page_naming_the_field(
    admin: tuple[TestClient, str],
) -> None:
    client, csrf = admin
    for field in ("rate_per_minute", "max_in_flight"):
        for value in ("²", "1_0", "-1", "٣"):
            made = client.post(
                "/ui/admin/keys",
                data={"csrf_token": csrf, "role": "viewer", "tenant": "bank", field: value},
            )
            _is_error_page(made, field)
    for field, value in (("seed", "٣"), ("seed", "1_0"), ("speed", "nan"), ("speed", "1_0")):
        spoken = client.post(
            "/ui/speak", data={"csrf_token": csrf, "text": "Hello there.", field: value}
        )
        _is_error_page(spoken, field)
    too_big = client.post("/ui/speak", data={"csrf_token": csrf, "text": "Hi.", "seed": "9" * 10})
    _is_error_page(too_big, "seed")


def test_form_values_accept_only_what_they_ask_for() -> None:
    assert whole_number(" 42 ", "n") == 42
    assert day("2026-03-04", "d") == date(2026, 3, 4) and day("", "d") is None
    for bad in ("²", "", "1.0", "1" * 19, "+1"):
        with pytest.raises(InvalidRequest):
            whole_number(bad, "n")
    for bad_day in ("2026-02-30", "9999-12-31", "2026-3-4", " 2026-03-04"):
        with pytest.raises(InvalidRequest):
            day(bad_day, "d")
