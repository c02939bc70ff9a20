"""``text_language_unsupported`` through every door (/v1/jobs, /v1/audio/speech, ``synth``),
and the languages in the voice lists. In process, with the piper and cosyvoice engines (the API
never loads a model: refusals and lists come from the voices' configs and tables)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from http_checks import error_of  # type: ignore[import-not-found]
from processes import run_cli  # type: ignore[import-not-found]
from speech import reference_wav  # type: ignore[import-not-found]
from test_detect import FOREIGN, ZH  # type: ignore[import-not-found]
from voice_files import piper_voice  # type: ignore[import-not-found]

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "engines"))
from cosyvoice_standin import REPO, make_model_dir  # type: ignore[import-not-found]

NAMES = {"zh": "Chinese", "ja": "Japanese", "ko": "Korean", "ru": "Russian", "ar": "Arabic"}
NAMES["hi"] = "Hindi"
CONSENT = "I, Jane Example, agree that steadyvoice may use my voice. 2026-12-07."

Client = Callable[..., TestClient]


def refused(resp: Any) -> dict[str, Any]:
    return error_of(resp, 422, "text_language_unsupported")


def upload(client: TestClient, **fields: str) -> dict[str, Any]:
    files = {"audio": ("clip.wav", reference_wav(), "audio/wav")}
    resp = client.post(
        "/v1/voices", data={"name": "Jane", "consent": CONSENT, **fields}, files=files
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


@pytest.mark.parametrize("language", sorted(FOREIGN))
def test_foreign_text_to_joe_is_refused_naming_language_and_alternatives(
    client_factory: Client, language: str
) -> None:
    client = client_factory(engine="piper")
    text, script = FOREIGN[language]
    err = refused(client.post("/v1/jobs", json={"text": text, "voice": "joe"}))
    assert err["language"] == language and err["script"] == script
    assert err["voice"] == "joe" and err["voice_languages"] == ["en"]
    assert err["alternatives"] == []
    message = err["message"]
    assert NAMES[language] in message and "English (en)" in message
    assert f"No voice of this service speaks {NAMES[language]}" in message
    if language in ("zh", "ja", "ko"):
        assert f"the cosyvoice engine speaks {NAMES[language]}" in message
    assert "add a Piper voice" in message


def test_the_bank_statement_line_is_refused_and_nothing_is_queued(client_factory: Client) -> None:
    client = client_factory(engine="piper")
    err = refused(client.post("/v1/jobs", json={"text": ZH}))  # joe is the default voice
    assert "the text is Chinese (Han script)" in err["message"]
    assert client.get("/v1/jobs").json()["items"] == []


def test_alternatives_name_the_services_voices_that_speak_it(
    client_factory: Client, tmp_path: Path
) -> None:
    xiao = piper_voice(tmp_path / "voices", "xiao", {"code": "zh_CN"}, "cmn")
    client = client_factory(engine="piper", piper={"voices": {"xiao": str(xiao)}})
    err = refused(client.post("/v1/jobs", json={"text": ZH, "voice": "joe"}))
    assert err["alternatives"] == ["xiao"]
    assert "Voices of this service that speak Chinese: xiao." in err["message"]
    assert client.post("/v1/jobs", json={"text": ZH, "voice": "xiao"}).status_code == 202
    # An English name in Chinese text is read by the Chinese voice (the documented rule).
    mixed = "请联系 John Smith 先生。"
    assert client.post("/v1/jobs", json={"text": mixed, "voice": "xiao"}).status_code == 202


def test_a_chinese_name_in_english_text_for_joe_follows_the_rule(client_factory: Client) -> None:
    client = client_factory(engine="piper")
    err = refused(client.post("/v1/jobs", json={"text": "Your branch is in 北京 today."}))
    assert err["language"] == "zh" and err["position"] == 18
    assert "2 letter(s) in Chinese (Han script) among its 21 letters" in err["message"]
    assert "'北京' at character 18" in err["message"] and "pinyin" in err["message"]
    ok = client.post("/v1/jobs", json={"text": "Your branch is in Beijing today."})
    assert ok.status_code == 202, ok.text


def test_a_german_sentence_to_joe_is_refused_a_short_one_is_not(client_factory: Client) -> None:
    client = client_factory(engine="piper")
    err = refused(
        client.post("/v1/jobs", json={"text": "Der Zug nach Berlin hat zehn Minuten Verspätung."})
    )
    assert err["language"] == "de" and err["script"] == "Latin" and "German" in err["message"]
    assert client.post("/v1/jobs", json={"text": "Danke, Jürgen!"}).status_code == 202


def test_a_voice_profile_on_piper_speaks_joes_language(client_factory: Client) -> None:
    client = client_factory(engine="piper")
    profile = upload(client, language="zh", transcript="Good morning.")
    err = refused(client.post("/v1/jobs", json={"text": ZH, "voice": profile["id"]}))
    assert err["voice"] == profile["id"] and err["voice_languages"] == ["en"]


def test_the_openai_endpoint_refuses_the_same_way(client_factory: Client) -> None:
    client = client_factory(engine="piper")
    body = {"model": "tts-1", "input": ZH, "voice": "alloy"}
    err = refused(client.post("/v1/audio/speech", json=body))
    assert err["language"] == "zh" and "Chinese" in err["message"]
    assert err["voice"] == "joe"  # alloy speaks as joe


def test_voice_lists_show_languages(client_factory: Client, tmp_path: Path) -> None:
    anna = piper_voice(tmp_path / "voices", "anna", {"code": "de_DE"}, "de")
    client = client_factory(engine="piper", piper={"voices": {"anna": str(anna)}})
    declared = upload(client, language="zh-CN", transcript="Good morning.")
    detected = upload(client, transcript="Good morning, this is my voice for the bank.")
    unknown = upload(client, transcript="Good morning.")  # too short to tell: no language
    assert (declared["language"], detected["language"], unknown["language"]) == ("zh", "en", None)
    listed = {v["id"]: v for v in client.get("/v1/voices").json()["items"]}
    assert listed[declared["id"]]["language"] == "zh"
    assert client.get(f"/v1/voices/{detected['id']}").json()["language"] == "en"

    voices = {v["id"]: v for v in client.get("/v1/audio/voices").json()["voices"]}
    assert voices["joe"]["languages"] == ["en"] and voices["anna"]["languages"] == ["de"]
    assert voices["alloy"]["speaks_as"] == "joe" and voices["alloy"]["languages"] == ["en"]
    profile = voices[declared["id"]]
    assert profile["languages"] == ["en"] and profile["language"] == "zh"


def test_a_declared_language_must_be_a_language_code(client_factory: Client) -> None:
    client = client_factory(engine="piper")
    files = {"audio": ("clip.wav", reference_wav(), "audio/wav")}
    data = {"name": "Jane", "consent": CONSENT, "language": "Chinese please"}
    err = error_of(client.post("/v1/voices", data=data, files=files), 422, "invalid_request")
    assert err["field"] == "language"


def test_fake_voices_take_any_language(client: TestClient) -> None:
    for text, _ in FOREIGN.values():
        assert client.post("/v1/jobs", json={"text": text}).status_code == 202
    voices = client.get("/v1/audio/voices").json()["voices"]
    assert all(v["languages"] == ["*"] for v in voices)


def test_cosyvoice_speaks_chinese_and_refuses_what_it_does_not(
    client_factory: Client, tmp_path: Path
) -> None:
    model = make_model_dir(tmp_path / "model", generation=2, speakers=("中文女",))
    cosyvoice = {"model_dir": str(model), "repo_dir": str(REPO), "speakers": ["中文女"]}
    client = client_factory(engine="cosyvoice", cosyvoice=cosyvoice)
    for language in ("zh", "ja", "ko"):
        resp = client.post("/v1/jobs", json={"text": FOREIGN[language][0]})
        assert resp.status_code == 202, resp.text
    err = refused(client.post("/v1/jobs", json={"text": FOREIGN["ar"][0]}))
    assert err["voice_languages"] == ["zh", "en", "ja", "ko", "yue"]
    assert "No voice of this service speaks Arabic." in err["message"]
    voices = client.get("/v1/audio/voices").json()["voices"]
    assert voices[0]["id"] == "中文女" and voices[0]["languages"][0] == "zh"


def test_synth_refuses_like_a_job(tmp_path: Path) -> None:
    out = run_cli(["synth", ZH, "-o", str(tmp_path / "a.wav")], tmp_path / "data")
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]
    assert "text_language_unsupported" in last and "Chinese" in last
    assert "Traceback" not in out.stderr and not (tmp_path / "a.wav").exists()
