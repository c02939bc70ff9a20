"""Row parsing edge cases a client's bytes can hold: each is a row-level error with a code,
never a 500, and a JSON string's own line separators do not split a JSONL line."""

from __future__ import annotations

import json
from typing import Any

import pytest
from batch_files import CSV  # type: ignore[import-not-found]
from fastapi.testclient import TestClient

from steadyvoice.batches.rows import parse


def _errors(data: bytes, source: str) -> set[tuple[int, str | None, str]]:
    return {(e.row, e.column, e.code) for e in parse(data, source, 100).errors}


def _json(*items: dict[str, Any]) -> bytes:
    return json.dumps({"items": list(items)}).encode()


def test_a_csv_seed_of_unicode_digits_is_seed_invalid() -> None:
    assert "²".isdigit()  # what made int() raise
    body = "text,seed\nOne.,²\nTwo.,١٢\nThree.,99999999999999999999\nFour.,7\n".encode()
    assert _errors(body, "csv") == {
        (1, "seed", "seed_invalid"),
        (2, "seed", "seed_invalid"),
        (3, "seed", "seed_invalid"),
    }


def test_a_huge_or_non_finite_speed_is_speed_invalid() -> None:
    body = b'{"items": [{"text": "a", "speed": 1' + b"0" * 400 + b'}, {"text": "b", "speed": NaN}]}'
    assert _errors(body, "json") == {(1, "speed", "speed_invalid"), (2, "speed", "speed_invalid")}
    assert _errors(b"text,speed\na,inf\nb,1e999\n", "csv") == {
        (1, "speed", "speed_invalid"),
        (2, "speed", "speed_invalid"),
    }


def test_non_finite_metadata_is_refused() -> None:
    items = '{"text": "a", "x": NaN}, {"text": "b", "x": -Infinity}, {"text": "c", "x": 1.5}'
    body = f'{{"items": [{items}]}}'.encode()
    assert _errors(body, "json") == {(1, "x", "metadata_invalid"), (2, "x", "metadata_invalid")}


@pytest.mark.parametrize(
    ("item", "column", "code"),
    [
        ({"name": "a\x00b"}, "name", "name_invalid"),
        ({"name": "two\nlines"}, "name", "name_invalid"),
        ({"voice": "v\x00"}, "voice", "voice_invalid"),
        ({"note": "nul \x00 here"}, "note", "metadata_invalid"),
        ({"note": "bell \x07"}, "note", "metadata_invalid"),
        ({"note": "lone \ud800"}, "note", "metadata_invalid"),
        ({"bad\x00column": "x"}, None, "metadata_invalid"),
    ],
)
def test_control_characters_in_names_and_metadata_are_refused(
    item: dict[str, Any], column: str | None, code: str
) -> None:
    assert _errors(_json({"text": "Hello.", **item}), "json") == {(1, column, code)}


def test_a_csv_column_name_with_a_control_character_is_a_header_error() -> None:
    assert _errors(b"text,no\x00te\na,b\nc,d\n", "csv") == {(0, None, "header_invalid")}


def test_metadata_may_hold_tabs_and_newlines() -> None:
    parsed = parse(_json({"text": "Hello.", "note": "a\tb\r\nc"}), "json", 10)
    assert not parsed.errors and parsed.rows[0].metadata == {"note": "a\tb\r\nc"}


def test_jsonl_splits_on_newlines_only() -> None:
    strings = ["a\u2028b", "c\u2029d", "e\x1cf\x1dg\x1eh", "i\x85j", "k\x0bl\x0cm"]
    lines = [
        json.dumps({"text": f"Line {n}.", "note": s}, ensure_ascii=False)
        for n, s in enumerate(strings)
    ]
    parsed = parse(("\r\n".join(lines) + "\n").encode(), "jsonl", 100)
    assert [e.code for e in parsed.errors] == [
        "metadata_invalid"
    ] * 2  # \x1c.. and \x0b are controls
    assert [r.metadata["note"] for r in parsed.rows] == [*strings[:2], strings[3]]
    assert [r.number for r in parsed.rows] == [1, 2, 4]


def test_bad_values_answer_422_over_http(batch_client: TestClient) -> None:
    body = "text,seed,name\nOne.,²,a\nTwo.,1,b\x00c\n".encode()
    r = batch_client.post("/v1/batches", content=body, headers=CSV)
    assert r.status_code == 422, r.text
    found = {(e["row"], e["column"], e["code"]) for e in r.json()["error"]["errors"]}
    assert found == {(1, "seed", "seed_invalid"), (2, "name", "name_invalid")}
    nan = (
        b'{"items": [{"text": "a", "speed": 1' + b"0" * 400 + b', "m": NaN}, {"text": "\\ud800"}]}'
    )
    r = batch_client.post("/v1/batches", content=nan, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    found = {(e["row"], e["column"], e["code"]) for e in r.json()["error"]["errors"]}
    assert found == {
        (1, "speed", "speed_invalid"),
        (1, "m", "metadata_invalid"),
        (2, "text", "text_invalid"),
    }
    assert batch_client.get("/v1/batches").json()["items"] == []
