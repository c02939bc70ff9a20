"""The console's Origin check: scheme, host and port with default ports filled in, or only
``console.public_origin`` when it is set (a proxy on a non-default port)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from pages_client import new_key, sign_in  # type: ignore[import-not-found]
from pydantic import ValidationError

from steadyvoice.console.origin import parse_origin
from steadyvoice.security.principal import Role
from steadyvoice.settings import ConsoleSettings


def _speak(client: TestClient, csrf: str, origin: str, host: str | None = None) -> int:
    headers = {"Origin": origin} | ({"Host": host} if host else {})
    answer = client.post(
        "/ui/speak",
        data={"csrf_token": csrf, "text": "Hello there."},
        headers=headers,
        follow_redirects=False,
    )
    return answer.status_code


def test_an_origin_with_its_port_matches_a_host_with_that_port(
    client_factory: Callable[..., TestClient],
) -> None:
    client = client_factory()
    csrf = sign_in(client, new_key(client, Role.OPERATOR, "default"))
    assert _speak(client, csrf, "http://tts.example:8443", host="tts.example:8443") == 303
    assert _speak(client, csrf, "http://TTS.example:80", host="tts.example") == 303  # default
    assert _speak(client, csrf, "http://tts.example", host="tts.example:8443") == 403
    assert _speak(client, csrf, "http://tts.example:8443", host="tts.example") == 403
    assert _speak(client, csrf, "https://tts.example:8443", host="tts.example:8443") == 403
    assert _speak(client, csrf, "http://evil.example:8443", host="tts.example:8443") == 403


def test_public_origin_is_the_only_origin_accepted(
    client_factory: Callable[..., TestClient],
) -> None:
    client = client_factory(console={"public_origin": "https://tts.example:8443"})
    csrf = sign_in(client, new_key(client, Role.OPERATOR, "default"))
    assert _speak(client, csrf, "https://tts.example:8443") == 303
    assert _speak(client, csrf, "https://tts.example:8443", host="127.0.0.1:8000") == 303
    assert _speak(client, csrf, "http://testserver") == 403  # the Host's own, not the public
    assert _speak(client, csrf, "https://tts.example") == 403


def test_public_origin_must_be_an_origin() -> None:
    assert ConsoleSettings(public_origin="https://TTS.example:8443/").public_origin == (
        "https://tts.example:8443"
    )
    for bad in ("tts.example", "ftp://tts.example", "https://tts.example/ui", "https://x:99999"):
        with pytest.raises(ValidationError):
            ConsoleSettings(public_origin=bad)


def test_origins_compare_with_default_ports() -> None:
    assert parse_origin("https://tts.example") == ("https", "tts.example", 443)
    assert parse_origin("http://[::1]:8080") == ("http", "::1", 8080)
    for bad in ("null", "https://u@tts.example", "https://tts.example:x", "https://a/b", ""):
        assert parse_origin(bad) is None, bad
