"""Every console page in headless Chromium, at 1280 and 360 px: axe-core finds no serious or
critical violation, nothing scrolls sideways at 360 px, and the record works from the keyboard.
A batch uploaded through the page is watched to the end and its archive downloaded (sharing this
module's service and browser).

axe-core is vendored for the tests only (tests/console/vendor/README.md). Screenshots of each
page at both widths go to a temp dir, or to ``STEADYVOICE_UI_SCREENSHOTS`` when set (``make
screenshots`` sets it to docs/ui, the ones docs/ui.md shows), so a test run never changes the
tree.
"""

from __future__ import annotations

import base64
import csv
import io
import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ConsoleService  # type: ignore[import-not-found]
from console_browser import wait_for  # type: ignore[import-not-found]
from processes import poll  # type: ignore[import-not-found]
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from steadyvoice.console.visit import SESSION_COOKIE

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")
SIZES = {1280: 900, 360: 780}
BLOCKING = {"serious", "critical"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
RUN_AXE = """
const done = arguments[arguments.length - 1];
axe.run(document)
  .then(r => done({passes: r.passes.length, violations: r.violations.map(v => ({id: v.id,
    impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))}))
  .catch(e => done({passes: 0, violations: [{id: "axe-error", impact: "critical",
    help: String(e), nodes: []}]}));
"""


@pytest.fixture(scope="module")
def seeded(console_service: ConsoleService) -> dict[str, str]:
    """A finished job and a batch, so the record, job and batch pages have something."""
    api = console_service.api
    job = api.post("/v1/jobs", json={"text": "Your March statement is ready.", "seed": 7})
    assert job.status_code == 202, job.text
    job_id = job.json()["id"]
    batch = api.post(
        "/v1/batches",
        content=b"text,name\nGood morning.,first\nGoodbye.,second\n",
        headers={"Content-Type": "text/csv"},
    )
    assert batch.status_code == 202, batch.text

    def finished() -> bool:
        return bool(api.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded")

    poll(finished, 60, "the seeded job to succeed", every=0.2)
    return {"job": job_id, "batch": batch.json()["id"]}


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("STEADYVOICE_UI_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def admin_session(console_service: ConsoleService) -> str:
    """One admin session for the module, signed in through the form over HTTP (the form
    itself has its own browser test); its cookie is handed to the browser."""
    with httpx.Client(base_url=console_service.url) as client:
        form = client.get("/ui/signin")
        token = CSRF.search(form.text)
        assert token is not None
        key = console_service.admin_key
        done = client.post("/ui/signin", data={"key": key, "csrf_token": token.group(1)})
        assert done.status_code == 303, done.text
        return str(client.cookies[SESSION_COOKIE])


def _signed_in(browser: WebDriver, url: str, session: str) -> None:
    browser.delete_all_cookies()
    browser.get(f"{url}/ui/static/console.css")  # a cookie is set for the page's own origin
    browser.add_cookie({"name": SESSION_COOKIE, "value": session, "path": "/ui"})


def _size(browser: WebDriver, width: int) -> None:
    """The viewport as a phone's (360: mobile, so the page's meta viewport applies) or a
    desktop's; a window cannot be made 360 px wide, an emulated viewport can."""
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": SIZES[width], "deviceScaleFactor": 1, "mobile": width < 600},
    )


def _violations(browser: WebDriver) -> list[dict[str, Any]]:
    if not browser.execute_script("return typeof window.axe === 'object'"):
        browser.execute_script(AXE)
    found: dict[str, Any] = browser.execute_async_script(RUN_AXE)
    assert found["passes"] > 10, found  # axe ran its rules on the page
    return [v for v in found["violations"] if v["impact"] in BLOCKING]


def _screenshot(browser: WebDriver, path: Path, width: int) -> None:
    height = int(browser.execute_script("return document.documentElement.scrollHeight"))
    clip = {"x": 0, "y": 0, "width": width, "height": min(max(height, 200), 3000), "scale": 1}
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(shot["data"]))


def _check_page(browser: WebDriver, name: str, shots: Path) -> list[str]:
    """Problems on the page now, at both widths (the screenshots taken on the way)."""
    problems = []
    for width in SIZES:
        _size(browser, width)
        browser.refresh()
        wait_for(
            browser,
            lambda b: b.execute_script("return document.readyState") == "complete",
            f"{name} to load",
        )
        for v in _violations(browser):
            problems.append(f"{name} @{width}px: {v['impact']} {v['id']}: {v['help']} {v['nodes']}")
        if width == 360:
            scroll = int(browser.execute_script("return document.documentElement.scrollWidth"))
            if scroll > 360:
                problems.append(f"{name} @360px scrolls sideways: {scroll} px wide")
        _screenshot(browser, shots / f"{name}-{width}.png", width)
    return problems


@pytest.fixture
def desktop(browser: WebDriver) -> Iterator[WebDriver]:
    yield browser
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_every_page_passes_axe_and_fits_a_phone(
    console_service: ConsoleService,
    desktop: WebDriver,
    seeded: dict[str, str],
    shots: Path,
    admin_session: str,
) -> None:
    browser, url = desktop, console_service.url
    browser.set_script_timeout(60)
    browser.delete_all_cookies()
    browser.get(f"{url}/ui/signin")
    problems = _check_page(browser, "signin", shots)
    _signed_in(browser, url, admin_session)
    pages = {
        "speak": "/ui/speak",
        "voices": "/ui/voices",
        "record": "/ui/record?text=march",
        "record-job": f"/ui/record/{seeded['job']}",
        "batches": "/ui/batches",
        "batch": f"/ui/batches/{seeded['batch']}",
        "service": "/ui/service",
        "admin-keys": "/ui/admin",
        "admin-audit": "/ui/admin/audit",
    }
    for name, path in pages.items():
        browser.get(url + path)
        problems += _check_page(browser, name, shots)
    assert not problems, "\n".join(problems)
    assert len(list(shots.glob("*.png"))) >= 2 * (len(pages) + 1)


def test_the_record_finds_a_job_by_a_word_and_exports_it_from_the_keyboard(
    console_service: ConsoleService, desktop: WebDriver, seeded: dict[str, str], admin_session: str
) -> None:
    browser, url = desktop, console_service.url
    _signed_in(browser, url, admin_session)
    browser.get(f"{url}/ui/record")

    def active_id() -> str:
        return str(browser.execute_script("return document.activeElement.id"))

    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)  # the skip link first
    assert browser.execute_script("return document.activeElement.className") == "skip"
    for _ in range(40):  # Tab, as a person would, to the text filter
        if active_id() == "f-text":
            break
        browser.switch_to.active_element.send_keys(Keys.TAB)
    assert active_id() == "f-text"
    browser.switch_to.active_element.send_keys("march", Keys.ENTER)
    wait_for(browser, lambda b: "text=march" in b.current_url, "the filtered record")
    row = f'tr[data-job="{seeded["job"]}"] a'
    link = wait_for(browser, lambda b: b.find_elements(By.CSS_SELECTOR, row), "the job's row")[0]

    export = browser.find_element(By.ID, "export")
    export.send_keys(Keys.ENTER)  # the CSV of this view, saved by the browser
    downloads = console_service.downloads

    def saved() -> list[Path]:
        return [p for p in downloads.glob("record_*.csv") if p.stat().st_size]

    exported = wait_for(browser, lambda b: saved(), "the CSV export")[0]
    rows = list(csv.DictReader(io.StringIO(exported.read_text(encoding="utf-8"))))
    assert [(r["id"], r["text"]) for r in rows] == [
        (seeded["job"], "Your March statement is ready.")
    ]
    for _ in range(60):
        if browser.switch_to.active_element == link:
            break
        browser.switch_to.active_element.send_keys(Keys.TAB)
    assert browser.switch_to.active_element == link
    link.send_keys(Keys.ENTER)
    wait_for(browser, lambda b: b.find_elements(By.ID, "verify-status"), "the job page")
    assert browser.find_element(By.ID, "verify-status").get_attribute("data-state") == "ok"


def test_a_batch_uploaded_in_the_page_is_watched_to_the_end_and_its_archive_saved(
    console_service: ConsoleService, desktop: WebDriver, admin_session: str, tmp_path: Path
) -> None:
    browser, url = desktop, console_service.url
    _signed_in(browser, url, admin_session)
    upload = tmp_path / "lines.csv"
    upload.write_text("text,name\nThe first line.,one\nThe second line.,two\n", encoding="utf-8")
    browser.get(f"{url}/ui/batches")
    browser.find_element(By.ID, "batch-file").send_keys(str(upload))
    browser.find_element(By.ID, "batch-submit").click()
    status = wait_for(browser, lambda b: b.find_elements(By.ID, "batch-status"), "the batch page")
    batch_id = browser.current_url.rsplit("/", 1)[1]
    assert status[0].get_attribute("data-status") in ("queued", "running", "done")

    def done(b: WebDriver) -> bool:  # the page updates itself: no reload here
        found = b.find_elements(By.CSS_SELECTOR, '#batch-status[data-status="done"]')
        return bool(found)

    wait_for(browser, done, "the batch to finish, shown live")
    assert "2 of 2 finished" in browser.find_element(By.ID, "batch-progress").text
    browser.find_element(By.ID, "archive").click()
    archive = console_service.downloads / f"batch_{batch_id}.zip"
    wait_for(browser, lambda b: archive.exists() and archive.stat().st_size, "the archive")
    with zipfile.ZipFile(archive) as z:
        assert {"manifest.csv", "manifest.json"} <= set(z.namelist())
        assert len([n for n in z.namelist() if n.endswith(".wav")]) == 2
