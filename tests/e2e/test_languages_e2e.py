"""Chinese to the English ``joe``, through a real ``serve`` and OpenAI's own client: refused with
``text_language_unsupported`` before any job, and the voice list says what each voice speaks.
No worker runs (``workers=0``): the refusal needs none."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest
from processes import ServiceFactory  # type: ignore[import-not-found]

pytestmark = pytest.mark.timeout(120)

ZH = "您好，您本月的账单金额为四十二元。"  # noqa: RUF001 - the issue's own sentence


def test_the_openai_client_gets_the_refusal(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]]
) -> None:
    svc = start_service(service_env(engine="piper", workers="0"), ready=False)
    key = svc.http.headers["Authorization"].removeprefix("Bearer ")
    client = openai.OpenAI(base_url=svc.url + "/v1", api_key=key, max_retries=0, timeout=30)
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        client.audio.speech.create(model="tts-1", voice="alloy", input=ZH)
    assert caught.value.status_code == 422
    body = caught.value.body
    assert isinstance(body, dict)
    error = body.get("error", body)
    assert error["code"] == "text_language_unsupported"
    assert error["language"] == "zh" and error["voice_languages"] == ["en"]
    assert "Chinese" in error["message"] and "cosyvoice" in error["message"]
    assert svc.http.get("/v1/jobs").json()["items"] == []  # nothing was queued

    voices = {v["id"]: v for v in svc.http.get("/v1/audio/voices").json()["voices"]}
    assert voices["joe"]["languages"] == ["en"] and voices["alloy"]["languages"] == ["en"]
