"""Errors that say what to do: a short consent, an upload over the size limit, a body that is
not JSON, an unknown format and a voice profile named by its name, through the real app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from http_checks import error_of  # type: ignore[import-not-found]
from speech import reference_wav  # type: ignore[import-not-found]

from steadyvoice.api.deps import Services
from steadyvoice.security.keys import NewKey
from steadyvoice.security.principal import Role

CONSENT = "I, Anna Example, agree that steadyvoice may use my voice. 2026-11-25."
SEND_JSON = "the body must be JSON (Content-Type: application/json)"
SMALL_UPLOADS = {"max_upload_bytes": 64 * 1024}


def upload(client: TestClient, audio: bytes, consent: str = CONSENT, name: str = "Anna") -> Any:
    files = {"audio": ("clip.wav", audio, "audio/wav")}
    return client.post("/v1/voices", data={"name": name, "consent": consent}, files=files)


def refused(client: TestClient, body: dict[str, Any], code: str, **headers: str) -> Any:
    """The error answering ``POST /v1/jobs`` with ``body``, which must be ``code`` (422)."""
    return error_of(client.post("/v1/jobs", json=body, headers=headers), 422, code)


def key_for(client: TestClient, role: Role, tenant: str) -> dict[str, str]:
    services: Services = cast(FastAPI, client.app).state.services
    issued = services.keys.create(NewKey(role, tenant, f"{tenant} {role}"), by="test")
    return {"Authorization": f"Bearer {issued.token}"}


# --- consent ---------------------------------------------------------------------------------


def test_a_short_consent_says_it_is_too_short_and_gives_the_minimum(client: TestClient) -> None:
    err = error_of(upload(client, reference_wav(), consent="  yes  "), 422, "consent_missing")
    assert err["field"] == "consent"
    assert err["chars"] == 3 and err["min_chars"] == 10
    assert "too short" in err["message"] and "3 characters" in err["message"]
    assert "at least 10" in err["message"]


def test_a_missing_consent_says_it_is_required(client: TestClient) -> None:
    err = error_of(upload(client, reference_wav(), consent=""), 422, "consent_missing")
    assert err["chars"] == 0 and err["min_chars"] == 10
    assert "required" in err["message"] and "too short" not in err["message"]


# --- reference_too_large ---------------------------------------------------------------------


def test_an_upload_over_the_limit_gives_its_size_the_limit_and_the_unit(
    client_factory: Callable[..., TestClient],
) -> None:
    client = client_factory(voices=SMALL_UPLOADS)
    size = 64 * 1024 + 5_000  # under the multipart allowance: the route measures the file
    err = error_of(upload(client, b"\0" * size), 413, "reference_too_large")
    assert (err["measured"], err["limit"], err["unit"]) == (size, 64 * 1024, "bytes")
    assert err["message"].startswith(f"the recording is {size} bytes, over the limit of 65536")
    assert "3 to 30 s of speech" in err["message"]


def test_a_declared_body_over_the_limit_is_measured_by_its_length(
    client_factory: Callable[..., TestClient],
) -> None:
    client = client_factory(voices=SMALL_UPLOADS)
    resp = upload(client, b"\0" * (1024 * 1024))  # refused from Content-Length, before reading
    err = error_of(resp, 413, "reference_too_large")
    assert err["measured"] > 1024 * 1024 and err["limit"] == 64 * 1024 and err["unit"] == "bytes"
    assert f"the upload is {err['measured']} bytes" in err["message"]


def test_a_streamed_body_over_the_limit_says_at_least_how_much_came(
    client_factory: Callable[..., TestClient],
) -> None:
    client = client_factory(api={"max_body_bytes": 2048})

    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(10):
            yield b"a" * 500
        yield b'"}'

    headers = {"content-type": "application/json"}  # no Content-Length: chunked
    resp = client.post("/v1/jobs", content=chunks(), headers=headers)
    err = error_of(resp, 413, "body_too_large")
    assert err["limit"] == 2048 and err["unit"] == "bytes" and err["measured"] > 2048
    assert f"more than {err['measured']} bytes" in err["message"]


# --- send JSON -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "content", "why"),
    [
        ({}, b'{"text": "Hello."}', "this request has no Content-Type"),
        ({"content-type": "text/plain"}, b'{"text": "Hello."}', "sent as 'text/plain'"),
        ({"content-type": "application/x-www-form-urlencoded"}, b"text=Hello.", "sent as"),
        ({"content-type": "application/json"}, b'{"text": "Hel', "not valid JSON"),
        ({"content-type": "application/json"}, b"", "this request has no body"),
    ],
)
@pytest.mark.parametrize("route", ["/v1/jobs", "/v1/keys"])
def test_a_body_that_is_not_json_is_told_to_send_json(
    client: TestClient, route: str, headers: dict[str, str], content: bytes, why: str
) -> None:
    err = error_of(client.post(route, content=content, headers=headers), 422, "invalid_request")
    assert err["message"].startswith(SEND_JSON), err
    assert why in err["message"]
    assert [f["field"] for f in err["fields"]] == ["body"]
    assert client.get("/v1/jobs").json()["items"] == []


@pytest.mark.parametrize(
    ("content", "kind"),
    [(b"[1, 2]", "an array"), (b'"text"', "a string"), (b"5", "a number"), (b"null", "null")],
)
def test_json_that_is_not_an_object_says_so(client: TestClient, content: bytes, kind: str) -> None:
    resp = client.post("/v1/jobs", content=content, headers={"content-type": "application/json"})
    err = error_of(resp, 422, "invalid_request")
    assert err["message"] == (
        f"the body must be a JSON object (Content-Type: application/json), not {kind}"
    )


# --- unsupported_format ----------------------------------------------------------------------


def test_an_unknown_job_format_is_unsupported_format(client: TestClient) -> None:
    resp = client.post("/v1/jobs", json={"text": "Hi.", "format": "ogg"})
    err = error_of(resp, 422, "unsupported_format")
    assert err["field"] == "format" and err["format"] == "ogg"
    assert err["supported"] == ["mp3", "opus", "aac", "flac", "wav", "pcm"]
    assert "'ogg' is not supported" in err["message"]
    assert client.get("/v1/jobs").json()["items"] == []


def test_an_unknown_conversion_format_is_unsupported_format(client: TestClient) -> None:
    job_id = client.post("/v1/jobs", json={"text": "Hi."}).json()["id"]
    resp = client.get(f"/v1/jobs/{job_id}/audio", params={"format": "ogg"})
    assert error_of(resp, 422, "unsupported_format")["field"] == "format"


def test_a_format_among_other_problems_is_listed_with_them(client: TestClient) -> None:
    resp = client.post("/v1/jobs", json={"text": "Hi.", "format": "ogg", "speed": 10})
    err = error_of(resp, 422, "invalid_request")
    assert {f["field"] for f in err["fields"]} == {"format", "speed"}


def test_a_format_of_the_wrong_type_stays_invalid_request(client: TestClient) -> None:
    err = refused(client, {"text": "Hi.", "format": 5}, "invalid_request")
    assert [f["field"] for f in err["fields"]] == ["format"]


# --- unknown_voice for a profile's name ------------------------------------------------------


def test_a_profile_named_by_its_name_is_unknown_voice_with_its_id(client: TestClient) -> None:
    created = upload(client, reference_wav())
    assert created.status_code == 201, created.text
    voice_id = created.json()["id"]
    err = refused(client, {"text": "Hi.", "voice": "anna"}, "unknown_voice")
    assert err["voice"] == "anna" and err["profiles"] == [voice_id]
    assert err["available"] == ["alpha", "beta"]
    assert f"the voice profile named 'anna' is {voice_id}: use that id" in err["message"]
    # The id works; once the profile is deleted its name is no longer suggested.
    assert client.post("/v1/jobs", json={"text": "Hi.", "voice": voice_id}).status_code == 202
    assert client.delete(f"/v1/voices/{voice_id}").status_code == 200
    err = refused(client, {"text": "Hi.", "voice": "Anna"}, "unknown_voice")
    assert "profiles" not in err and err["message"] == "unknown voice 'Anna'"


def test_several_profiles_of_one_name_are_all_named(client: TestClient) -> None:
    ids = [upload(client, reference_wav()).json()["id"] for _ in range(2)]
    err = refused(client, {"text": "Hi.", "voice": "Anna"}, "unknown_voice")
    assert err["profiles"] == ids[::-1]  # newest first
    assert "use one of these ids" in err["message"]


def test_another_tenants_profile_is_never_suggested(client: TestClient) -> None:
    theirs = key_for(client, Role.OPERATOR, "tenant-b")
    created = client.post(
        "/v1/voices",
        data={"name": "Anna", "consent": CONSENT},
        files={"audio": ("clip.wav", reference_wav(), "audio/wav")},
        headers=theirs,
    )
    assert created.status_code == 201, created.text
    mine = key_for(client, Role.OPERATOR, "tenant-a")
    resp = client.post("/v1/jobs", json={"text": "Hi.", "voice": "Anna"}, headers=mine)
    err = error_of(resp, 422, "unknown_voice")
    assert "profiles" not in err and created.json()["id"] not in err["message"]
    resp = client.post("/v1/jobs", json={"text": "Hi.", "voice": "Anna"}, headers=theirs)
    assert error_of(resp, 422, "unknown_voice")["profiles"] == [created.json()["id"]]


@pytest.mark.parametrize("voice", ["a\x00b", "x" * 500, "   "])
def test_junk_voice_names_are_plain_unknown_voice(client: TestClient, voice: str) -> None:
    err = refused(client, {"text": "Hi.", "voice": voice}, "unknown_voice")
    assert "profiles" not in err
