"""Text with nothing to say is refused at submission, the same way on every route and engine."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from http_checks import error_of  # type: ignore[import-not-found]

from steadyvoice.errors import TextUnspeakable
from steadyvoice.textrules import refuse_unspeakable

pytestmark = pytest.mark.timeout(60)

UNSPEAKABLE = [
    "...",
    "?!",
    "!!! ...",
    "- - -",
    "()[]{}",
    '"\'"',
    "* # @ & %",
    "$ + = ~ ^ |",
    "\u3002\uff01\uff1f\u2026",  # ideographic full stop, fullwidth ! and ?, ellipsis
    "\u2014 \u2013",  # em and en dashes
    "\u00bf\u00a1",  # ¿¡
    "\u00ab \u00bb \u201c\u201d \u2018\u2019",  # guillemets, curly quotes
    "\u3001\u300c\u300d",  # ideographic comma, corner brackets
    ". \t.\n.",
    "\u00a0!\u2003?",  # no-break and em spaces between
    "\u266a\u2665\u2192",  # ♪♥→
    "\U0001f600\U0001f44d",  # emoji
    "\u0301\u0308",  # combining marks with nothing to combine with
]

SPEAKABLE = [
    "A.",
    "42",
    "\u00bfQu\u00e9?",  # ¿Qué?
    "...hello",
    "!!! 1 ...",
    "\u4f60\u597d\u3002",  # 你好。
    "\u00bd",  # ½
    "\u00e9",
    "x",
]


@pytest.mark.parametrize("text", UNSPEAKABLE)
def test_punctuation_and_symbols_alone_are_unspeakable(text: str) -> None:
    with pytest.raises(TextUnspeakable) as caught:
        refuse_unspeakable(text)
    assert (caught.value.code, caught.value.status) == ("text_unspeakable", 422)
    assert caught.value.details["field"] == "text"


@pytest.mark.parametrize("text", SPEAKABLE)
def test_a_letter_or_a_digit_is_something_to_say(text: str) -> None:
    refuse_unspeakable(text)


@pytest.mark.parametrize("engine", ["fake", "piper"])
def test_both_routes_refuse_it_before_queueing(
    client_factory: Callable[..., TestClient], engine: str
) -> None:
    client = client_factory(engine=engine)
    for text in UNSPEAKABLE:
        error_of(client.post("/v1/jobs", json={"text": text}), 422, "text_unspeakable")
        speech = {"model": "tts-1", "input": text, "voice": "alloy"}
        error_of(client.post("/v1/audio/speech", json=speech), 422, "text_unspeakable")
    assert client.get("/v1/jobs").json()["items"] == [], "nothing was queued"
    for text in SPEAKABLE:
        r = client.post("/v1/jobs", json={"text": text})
        if engine == "piper" and text == "\u4f60\u597d\u3002":  # joe speaks English only
            error_of(r, 422, "text_language_unsupported")
            continue
        assert r.status_code == 202, (text, r.text)
