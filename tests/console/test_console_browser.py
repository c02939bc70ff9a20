"""The console in a real browser: headless Chromium against a real ``serve`` with piper.

One serve and one browser for the module; the tests run in order and build on each other
(the accepted voice is spoken with, the job is then looked for from another tenant), as a
person would walk through: sign in, add a voice (refused, then accepted, then recorded with
the microphone), speak with it, play and download, generate again, sign out. Then the
refusals: a viewer, a form without its token, another tenant's job.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from conftest import ConsoleService  # type: ignore[import-not-found]
from console_browser import sign_in, text_of, wait_for  # type: ignore[import-not-found]
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

READING = (
    "Good morning. The weather was bright, and the train was on time. "
    "We walked along the river and talked about the summer."
)
SAID = "Welcome to the console. This sentence is spoken with the new voice."
state: dict[str, Any] = {}


def _speech(console: ConsoleService) -> bytes:
    """Piper reading ``READING``: a real voice to upload (made by the service under test)."""
    job = console.service.submit(READING)
    assert console.service.wait_job(job["id"])["status"] == "succeeded"
    audio = console.api.get(f"/v1/jobs/{job['id']}/audio")
    assert audio.status_code == 200
    return audio.content


def _at_rms(wav: bytes, rms: float) -> bytes:
    samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
    scaled = samples * (rms / float(np.sqrt(np.mean(np.square(samples)))))
    out = io.BytesIO()
    sf.write(out, scaled, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


@pytest.fixture(scope="module")
def references(console_service: ConsoleService) -> dict[str, Path]:
    """A good reference and one far too quiet, as files to choose in the upload form."""
    speech = _speech(console_service)
    folder = console_service.downloads.parent / "references"
    folder.mkdir()
    files = {"good": speech, "quiet": _at_rms(speech, 10 ** (-55 / 20))}
    for name, data in files.items():
        (folder / f"{name}.wav").write_bytes(data)
    return {name: folder / f"{name}.wav" for name in files}


@pytest.fixture(scope="module")
def browser_args(references: dict[str, Path]) -> list[str]:
    """The microphone is a fake device reading the good reference (no permission prompt)."""
    return [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={references['good']}",
    ]


def _fetch(
    browser: WebDriver, path: str, method: str = "GET", form: dict[str, str] | None = None
) -> int:
    """A request from the page's own script, with its cookies; the status it got."""
    status: int = browser.execute_async_script(
        """
        const [path, method, fields, done] = arguments;
        const body = fields ? new FormData() : undefined;
        if (fields) for (const [k, v] of Object.entries(fields)) body.append(k, v);
        fetch(path, {method, body, redirect: "manual"}).then(r => done(r.status), e => done(-1));
        """,
        path,
        method,
        form,
    )
    return status


def _status(browser: WebDriver) -> str | None:
    """The job panel's status, read in one step (the panel is swapped while the job runs)."""
    found: str | None = browser.execute_script(
        "const e = document.getElementById('job-status'); return e && e.dataset.status;"
    )
    return found


def _csrf(browser: WebDriver) -> str:
    meta = browser.find_element(By.CSS_SELECTOR, 'meta[name="csrf-token"]')
    return str(meta.get_attribute("content"))


def _upload(browser: WebDriver, url: str, path: Path | None, name: str) -> None:
    browser.get(f"{url}/ui/voices")
    browser.find_element(By.ID, "name").send_keys(name)
    if path is not None:
        browser.find_element(By.ID, "audio").send_keys(str(path))
    browser.find_element(By.ID, "transcript").send_keys(READING)
    browser.find_element(By.ID, "consent").send_keys("Joe agreed on 2026-03-01 to tests.")
    browser.find_element(By.ID, "consent-given").click()


def _checks(browser: WebDriver) -> dict[str, tuple[str, str]]:
    rows = browser.find_elements(By.CSS_SELECTOR, "#checks li")
    return {
        str(r.get_attribute("data-check")): (str(r.get_attribute("data-state")), r.text)
        for r in rows
    }


def test_sign_in_keeps_the_key_out_of_urls_pages_and_storage(
    console_service: ConsoleService, browser: WebDriver
) -> None:
    browser.get(console_service.url)  # the service's address leads to sign-in
    wait_for(browser, lambda b: "/ui/signin" in b.current_url, "the sign-in page")
    key = console_service.make_key("operator")
    state["operator"] = key
    sign_in(browser, console_service.url, key)
    assert browser.current_url.endswith("/ui/speak")
    assert key not in browser.current_url and key not in browser.page_source
    stored = browser.execute_script(
        "return [JSON.stringify(localStorage), JSON.stringify(sessionStorage), document.cookie]"
    )
    assert stored[:2] == ["{}", "{}"] and key not in stored[2]
    assert "sv_console" not in stored[2]  # HttpOnly: no script can read the session


def test_a_reference_is_refused_for_a_clear_reason_then_accepted(
    console_service: ConsoleService, browser: WebDriver, references: dict[str, Path]
) -> None:
    _upload(browser, console_service.url, references["quiet"], "Joe, too quiet")
    browser.find_element(By.ID, "upload-submit").click()
    wait_for(browser, lambda b: b.find_elements(By.ID, "upload-error"), "the refusal")
    checks = _checks(browser)
    state_, words = checks["level"]
    assert state_ == "fail", checks
    assert re.search(r"too quiet: \u22125\d dBFS, needs at least \u221240", words), words
    assert checks["sample_rate"][0] == "pass" and checks["noise"][0] == "skip"
    # The form keeps what was typed (the file must be chosen again).
    assert browser.find_element(By.ID, "name").get_attribute("value") == "Joe, too quiet"

    _upload(browser, console_service.url, references["good"], "Joe")
    browser.find_element(By.ID, "upload-submit").click()
    wait_for(browser, lambda b: b.find_elements(By.ID, "voice-accepted"), "the accepted voice")
    checks = _checks(browser)
    assert {s for s, _ in checks.values()} == {"pass"}, checks
    assert "dBFS, needs at least \u221240" in checks["level"][1]
    state["voice"] = text_of(browser, "voice-id")


def test_a_reference_recorded_with_the_microphone_is_accepted(
    console_service: ConsoleService, browser: WebDriver
) -> None:
    _upload(browser, console_service.url, None, "Joe, recorded")
    wait_for(browser, lambda b: b.find_element(By.ID, "recorder").is_displayed(), "recorder")
    browser.find_element(By.ID, "record-start").click()
    wait_for(browser, lambda b: "Recording" in text_of(b, "record-state"), "recording")
    # The fake microphone plays the reading in real time: 4.5 s holds over 3 s of speech.
    browser.implicitly_wait(0)
    deadline = browser.execute_async_script(
        "const done = arguments[0]; setTimeout(() => done(true), 4500);"
    )
    assert deadline
    browser.find_element(By.ID, "record-stop").click()
    wait_for(
        browser,
        lambda b: b.find_element(By.ID, "record-state").get_attribute("data-ready"),
        "the recording as WAV",
    )
    browser.find_element(By.ID, "upload-submit").click()
    wait_for(
        browser,
        lambda b: (
            b.find_elements(By.ID, "voice-accepted") or b.find_elements(By.ID, "upload-error")
        ),
        "the recorded voice's checks",
    )
    assert browser.find_elements(By.ID, "voice-accepted"), _checks(browser)
    # Its page plays the reference as recorded, and deletes the profile.
    duration = browser.execute_async_script(
        """
        const done = arguments[0];
        const a = document.getElementById("reference-player");
        a.addEventListener("loadedmetadata", () => done(a.duration));
        a.addEventListener("error", () => done(-1));
        a.load();
        """
    )
    assert duration >= 3.0, duration
    recorded = text_of(browser, "voice-id")
    browser.find_element(By.ID, "delete-submit").click()
    wait_for(browser, lambda b: b.current_url.endswith("/ui/voices"), "the voices list")
    listed = {r.get_attribute("data-voice") for r in browser.find_elements(By.CSS_SELECTOR, "tr")}
    assert recorded not in listed and state["voice"] in listed


def test_speak_with_the_profile_plays_downloads_and_repeats(
    console_service: ConsoleService, browser: WebDriver
) -> None:
    browser.get(f"{console_service.url}/ui/voices/{state['voice']}")
    text = browser.find_element(By.ID, "try-text")
    text.clear()
    text.send_keys(SAID)
    browser.find_element(By.ID, "try-submit").click()
    wait_for(browser, lambda b: b.find_elements(By.ID, "job-panel"), "the job's panel")
    wait_for(
        browser,
        lambda b: _status(b) == "succeeded",
        "the job to succeed (the page updates by itself)",
    )
    sha = text_of(browser, "record-sha256")
    assert re.fullmatch(r"[0-9a-f]{64}", sha)
    assert text_of(browser, "record-spoken") == SAID and text_of(browser, "record-seed") == "42"
    assert "piper" in text_of(browser, "record-engine")
    state["job"] = browser.current_url.rsplit("/", 1)[-1]

    browser.set_script_timeout(20)
    played = browser.execute_async_script(
        """
        const done = arguments[0];
        const a = document.getElementById("player");
        a.play().then(() => {
          const t0 = a.currentTime;
          const report = () => done({duration: a.duration, advanced: a.currentTime > t0});
          setTimeout(report, 400);
        }, e => done({error: String(e)}));
        """
    )
    assert played.get("duration", 0) > 0 and played["advanced"], played

    browser.find_element(By.ID, "download").click()
    folder = console_service.downloads
    saved = wait_for(
        browser,
        lambda _: [p for p in folder.iterdir() if p.suffix == ".wav"],
        "the downloaded file",
    )
    assert hashlib.sha256(saved[0].read_bytes()).hexdigest() == sha

    browser.find_element(By.ID, "again").click()
    wait_for(
        browser,
        lambda b: _status(b) == "succeeded" and b.find_elements(By.ID, "same-hash"),
        "the repeat to succeed",
    )
    assert browser.current_url.rsplit("?", 1)[0].rsplit("/", 1)[-1] != state["job"]
    assert text_of(browser, "record-sha256") == sha
    assert browser.find_element(By.ID, "same-hash").get_attribute("data-same") == "yes"


def test_sign_out_then_back_shows_nothing(
    console_service: ConsoleService, browser: WebDriver
) -> None:
    browser.get(f"{console_service.url}/ui/speak/{state['job']}")
    assert browser.find_elements(By.ID, "job-panel")
    browser.find_element(By.ID, "signout").click()
    wait_for(browser, lambda b: b.current_url.endswith("/ui/signin"), "the sign-in page")
    browser.back()
    wait_for(browser, lambda b: b.find_elements(By.ID, "signin-form"), "sign-in, not the job")
    assert not browser.find_elements(By.ID, "job-panel")
    assert SAID not in browser.page_source


def test_a_viewer_sees_no_submit_controls_and_a_forged_post_is_refused(
    console_service: ConsoleService, browser: WebDriver
) -> None:
    sign_in(browser, console_service.url, console_service.make_key("viewer"))
    browser.get(f"{console_service.url}/ui/speak/{state['job']}")
    assert browser.find_elements(By.ID, "job-panel")  # a viewer sees the job
    for control in ("speak-submit", "again"):
        assert not browser.find_elements(By.ID, control)
    browser.get(f"{console_service.url}/ui/voices")
    assert not browser.find_elements(By.ID, "upload-form")
    forged = {"text": "Forged.", "csrf_token": _csrf(browser)}
    assert _fetch(browser, "/ui/speak", "POST", forged) == 403
    assert _fetch(browser, f"/ui/voices/{state['voice']}/delete", "POST", forged) == 403


def test_a_form_without_its_csrf_token_is_refused(
    console_service: ConsoleService, browser: WebDriver
) -> None:
    sign_in(browser, console_service.url, state["operator"])
    assert _fetch(browser, "/ui/speak", "POST", {"text": "No token."}) == 403
    assert _fetch(browser, "/ui/speak", "POST", {"text": "Bad.", "csrf_token": "x" * 43}) == 403


def test_another_tenants_job_is_not_found(
    console_service: ConsoleService, browser: WebDriver
) -> None:
    sign_in(browser, console_service.url, console_service.make_key("operator", "globex"))
    browser.get(f"{console_service.url}/ui/speak/{state['job']}")
    error = browser.find_element(By.ID, "error-message")
    assert error.get_attribute("data-code") == "job_not_found"
    assert SAID not in browser.page_source
    for path in ("/ui/speak/{}", "/ui/jobs/{}/download"):
        assert _fetch(browser, path.format(state["job"])) == 404
    assert _fetch(browser, f"/ui/voices/{state['voice']}") == 404
