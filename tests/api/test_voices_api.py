"""Voice profile routes, in process: upload checks, consent, reads, deletion, jobs that use them."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from http_checks import error_of  # type: ignore[import-not-found]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from speech import encode, joe_speech, reference_wav  # type: ignore[import-not-found]

from steadyvoice.api.deps import Services
from steadyvoice.jobs.runner import run_claimed

CONSENT = "I, Jane Example, agree that steadyvoice may use my voice. 2026-11-25."


def upload(
    client: TestClient,
    audio: bytes | None,
    name: str = "Jane",
    consent: str | None = CONSENT,
    transcript: str | None = None,
) -> Any:
    data = {"name": name}
    if consent is not None:
        data["consent"] = consent
    if transcript is not None:
        data["transcript"] = transcript
    files = {"audio": ("clip.bin", audio, "application/octet-stream")} if audio is not None else {}
    return client.post("/v1/voices", data=data, files=files)


def services(client: TestClient) -> Services:
    svc: Services = cast(FastAPI, client.app).state.services
    return svc


@pytest.fixture
def voice(client: TestClient) -> dict[str, Any]:
    resp = upload(client, reference_wav(), transcript="Good morning.")
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def stored_files(client: TestClient) -> list[Path]:
    root = services(client).settings.voices_dir
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --- creating and reading ------------------------------------------------------------------


def test_upload_creates_a_profile_with_its_consent_and_checksum(client: TestClient) -> None:
    audio = reference_wav()
    resp = upload(client, audio, transcript="Good morning.")
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["id"].startswith("vp_")
    assert resp.headers["location"] == f"/v1/voices/{body['id']}"
    assert body["status"] == "active"
    assert body["name"] == "Jane"
    assert body["consent"] == CONSENT
    assert body["transcript"] == "Good morning."
    assert body["created_by"] == client.get("/v1/me").json()["key_id"]
    assert body["tenant"] == "default"
    ref = body["reference"]
    assert ref["sha256"] == hashlib.sha256(audio).hexdigest()
    assert ref["size_bytes"] == len(audio)
    assert ref["format"] == "WAV" and ref["sample_rate"] == 22_050 and ref["channels"] == 1
    assert 3 < ref["speech_seconds"] <= ref["file_seconds"] < 30
    assert {"snr_db", "clipped_fraction"} <= set(ref["measurements"])
    assert body["analysis_version"]
    assert client.get(f"/v1/voices/{body['id']}").json() == body


def test_the_reference_downloads_exactly_as_uploaded(
    client: TestClient, voice: dict[str, Any]
) -> None:
    resp = client.get(voice["reference"]["url"])
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "audio/wav"
    assert hashlib.sha256(resp.content).hexdigest() == voice["reference"]["sha256"]
    assert resp.headers["x-content-sha256"] == voice["reference"]["sha256"]


def test_the_format_is_found_from_the_content_not_the_name(client: TestClient) -> None:
    samples, rate = joe_speech()
    resp = upload(client, encode(samples, rate, "FLAC"))  # sent as clip.bin
    assert resp.status_code == 201, resp.text
    assert resp.json()["reference"]["format"] == "FLAC"
    download = client.get(resp.json()["reference"]["url"])
    assert download.headers["content-type"] == "audio/flac"


def test_list_is_newest_first_pages_and_hides_deleted(client: TestClient) -> None:
    ids = [upload(client, reference_wav(), name=f"v{i}").json()["id"] for i in range(3)]
    page = client.get("/v1/voices", params={"limit": 2}).json()
    assert [v["id"] for v in page["items"]] == ids[::-1][:2]
    rest = client.get("/v1/voices", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [v["id"] for v in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    assert client.delete(f"/v1/voices/{ids[1]}").status_code == 200
    listed = [v["id"] for v in client.get("/v1/voices").json()["items"]]
    assert listed == [ids[2], ids[0]]
    every = client.get("/v1/voices", params={"include_deleted": "true"}).json()["items"]
    assert [v["id"] for v in every] == ids[::-1]


def test_unknown_voice_and_bad_cursor(client: TestClient) -> None:
    error_of(client.get("/v1/voices/vp_nothing"), 404, "voice_not_found")
    error_of(client.get("/v1/voices/vp_nothing/reference"), 404, "voice_not_found")
    error_of(client.delete("/v1/voices/vp_nothing"), 404, "voice_not_found")
    error_of(client.get("/v1/voices", params={"cursor": "%%%"}), 422, "invalid_cursor")


def test_hostile_ids_never_reach_the_database(client_factory: Any, pg_url: str) -> None:
    client = client_factory(database_url=pg_url)  # PostgreSQL refuses NUL in text: no 500
    for path in ("/v1/voices/vp_%00", "/v1/voices/vp_%00/reference"):
        error_of(client.get(path), 404, "voice_not_found")
    error_of(client.delete("/v1/voices/vp_%00"), 404, "voice_not_found")
    resp = client.post("/v1/jobs", json={"text": "Hi.", "voice": "vp_\u0000"})
    error_of(resp, 422, "unknown_voice")
    cursor = base64.urlsafe_b64encode(b"2026-01-01T00:00:00+00:00|vp_\x00").decode()
    error_of(client.get("/v1/voices", params={"cursor": cursor}), 422, "invalid_cursor")


# --- refusals at the door -------------------------------------------------------------------


@pytest.mark.parametrize("consent", [None, "", "   ", "yes"])
def test_a_profile_needs_a_consent_statement(client: TestClient, consent: str | None) -> None:
    err = error_of(upload(client, reference_wav(), consent=consent), 422, "consent_missing")
    assert err["field"] == "consent"
    assert stored_files(client) == []


def test_missing_audio_or_name_is_invalid_request(client: TestClient) -> None:
    err = error_of(upload(client, None), 422, "invalid_request")
    assert "audio" in [f["field"] for f in err["fields"]]
    error_of(upload(client, reference_wav(), name="  "), 422, "invalid_request")


def test_control_characters_in_text_fields_are_refused(client: TestClient) -> None:
    err = error_of(upload(client, reference_wav(), transcript="a\x00b"), 422, "text_invalid")
    assert err["field"] == "transcript"
    error_of(upload(client, reference_wav(), consent=CONSENT + "\x07"), 422, "text_invalid")


def _stereo_pair() -> bytes:
    samples, rate = joe_speech()
    other, _ = joe_speech("Completely different words are spoken on the right channel now.")
    n = min(len(samples), len(other))
    return encode(np.stack([samples[:n], other[:n]], axis=1), rate)


def _noisy() -> bytes:
    samples, rate = joe_speech()
    noise = np.random.default_rng(1).standard_normal(len(samples)).astype(np.float32) * 0.03
    return encode(np.clip(samples + noise, -1, 1), rate)


def _phone() -> bytes:
    samples, rate = joe_speech()
    return encode(samples[:: rate // 8000][: len(samples) * 8000 // rate], 8000)


def _short() -> bytes:
    samples, rate = joe_speech("Hello there, how are you?")
    return encode(np.concatenate([samples, np.zeros(rate * 5, np.float32)]), rate)


REFUSALS = {
    "reference_sample_rate_too_low": _phone,
    "reference_not_mono": _stereo_pair,
    "reference_too_noisy": _noisy,
    "reference_too_short": _short,
    "reference_no_speech": lambda: encode(np.zeros(22_050 * 5, np.float32), 22_050),
    "reference_unreadable": lambda: reference_wav()[:60],
}


@pytest.mark.parametrize("code", sorted(REFUSALS))
def test_bad_references_are_refused_with_their_code(client: TestClient, code: str) -> None:
    err = error_of(upload(client, REFUSALS[code]()), 422, code)
    if code != "reference_unreadable":
        assert "measured" in err and "limit" in err, err
    assert stored_files(client) == []
    assert client.get("/v1/voices").json()["items"] == []


def test_an_upload_over_the_limit_is_413(client_factory: Any) -> None:
    client = client_factory(voices={"max_upload_bytes": 64 * 1024})
    err = error_of(upload(client, b"\0" * (64 * 1024 + 1)), 413, "reference_too_large")
    assert err["limit"] == 64 * 1024
    too_big_body = b"\0" * (64 * 1024 + 300 * 1024)
    err = error_of(upload(client, too_big_body), 413, "reference_too_large")
    assert stored_files(client) == []


def test_too_many_checks_at_once_is_503_with_retry_after(client_factory: Any) -> None:
    client = client_factory(voices={"max_concurrent_checks": 1})
    checks = services(client).voices._checks
    assert checks.acquire(blocking=False)
    try:
        resp = upload(client, reference_wav())
        error_of(resp, 503, "voice_checks_busy")
        assert int(resp.headers["retry-after"]) > 0
    finally:
        checks.release()
    assert upload(client, reference_wav()).status_code == 201


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(blob=st.binary(max_size=4096))
def test_fuzzed_uploads_never_get_a_5xx(client: TestClient, blob: bytes) -> None:
    resp = upload(client, reference_wav()[:44] + blob if blob[:1] == b"\0" else blob)
    assert resp.status_code in (201, 413, 422), resp.text
    assert "Traceback" not in resp.text


# --- jobs that name a profile -----------------------------------------------------------------


def test_a_job_records_the_profile_it_uses(client: TestClient, voice: dict[str, Any]) -> None:
    resp = client.post("/v1/jobs", json={"text": "Hello there.", "voice": voice["id"]})
    assert resp.status_code == 202, resp.text
    job = resp.json()
    assert job["voice"] == voice["id"]
    assert job["params"]["base_voice"] == "alpha"
    assert job["params"]["voice_profile"] == {
        "id": voice["id"],
        "reference_sha256": voice["reference"]["sha256"],
        "analysis_version": voice["analysis_version"],
    }
    assert job["engine_version"] == "fake-2+split-clause1+sr16000+target"


def test_an_unknown_profile_is_unknown_voice(client: TestClient) -> None:
    resp = client.post("/v1/jobs", json={"text": "Hi.", "voice": "vp_0000"})
    error_of(resp, 422, "unknown_voice")


def _run_one(client: TestClient) -> dict[str, Any]:
    svc = services(client)
    claim = svc.store.claim("test:1", 30)
    assert claim is not None
    run_claimed(claim, svc.engine, svc.store, svc.storage, svc.voices)
    body: dict[str, Any] = client.get(f"/v1/jobs/{claim.job.id}").json()
    return body


def test_a_profile_changes_the_audio_and_repeats_exactly(
    client: TestClient, voice: dict[str, Any]
) -> None:
    shas = []
    for body in (
        {"text": "Hello there.", "voice": voice["id"]},
        {"text": "Hello there.", "voice": voice["id"]},
        {"text": "Hello there."},
    ):
        assert client.post("/v1/jobs", json=body).status_code == 202
        job = _run_one(client)
        assert job["status"] == "succeeded", job
        shas.append(job["output"]["sha256"])
    assert shas[0] == shas[1] != shas[2]


def test_deleting_a_voice_refuses_new_jobs_and_keeps_history(
    client: TestClient, voice: dict[str, Any]
) -> None:
    vid = voice["id"]
    assert client.post("/v1/jobs", json={"text": "Before.", "voice": vid}).status_code == 202
    done = _run_one(client)
    queued = client.post("/v1/jobs", json={"text": "Queued.", "voice": vid}).json()

    deleted = client.delete(f"/v1/voices/{vid}")
    assert deleted.status_code == 200
    gone = deleted.json()
    assert gone["status"] == "deleted"
    assert gone["deleted_by"] == client.get("/v1/me").json()["key_id"]
    assert client.delete(f"/v1/voices/{vid}").json()["deleted_at"] == gone["deleted_at"]

    err = error_of(
        client.post("/v1/jobs", json={"text": "After.", "voice": vid}), 422, "voice_deleted"
    )
    assert err["voice"] == vid
    # The record, the reference and the finished job all stay readable.
    assert client.get(f"/v1/voices/{vid}").json()["status"] == "deleted"
    assert client.get(f"/v1/voices/{vid}/reference").status_code == 200
    old = client.get(f"/v1/jobs/{done['id']}").json()
    assert old["status"] == "succeeded" and old["voice"] == vid
    assert client.get(f"/v1/jobs/{done['id']}/audio").status_code == 200
    # A job accepted before the deletion but not yet run fails with the same clear code.
    failed = _run_one(client)
    assert failed["id"] == queued["id"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "voice_deleted"


def test_an_outdated_analysis_is_refused_until_reanalysed(client_factory: Any) -> None:
    client = client_factory(engine="piper")  # piper checks the analysis scheme it adapts with
    voice = upload(client, reference_wav()).json()
    store = services(client).voices._store
    current = store.get(voice["id"])
    store.set_analysis(voice["id"], {**current.analysis, "scheme": "world-ltas-0"}, "old")

    resp = client.post("/v1/jobs", json={"text": "Hello.", "voice": voice["id"]})
    err = error_of(resp, 422, "voice_analysis_outdated")
    assert err["scheme"] == "world-ltas-0" and "reanalyse" in err["message"]

    renewed = services(client).voices.reanalyse(voice["id"])
    assert renewed.analysis == current.analysis
    assert renewed.analysis_version == current.analysis_version
    assert client.post("/v1/jobs", json={"text": "Hello.", "voice": voice["id"]}).status_code == 202
