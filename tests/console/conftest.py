"""The console's real-browser harness: one real ``serve`` (piper) and one headless Chromium per
module, driven by Selenium through Debian's own chromedriver.

Selenium never downloads a browser or a driver here: the driver's path is given, the
browser's binary too, and ``SE_OFFLINE=true`` keeps Selenium Manager from reaching out.
scripts/ensure-chromium.sh (run by ``make pytest``) installs both Debian packages.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from processes import Service, admin_key, free_port  # type: ignore[import-not-found]
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@dataclass
class ConsoleService:
    """A running ``serve`` for browser tests, with an admin API client beside it."""

    service: Service
    data_dir: Path
    downloads: Path
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return str(self.service.url)

    @property
    def api(self) -> httpx.Client:
        """An httpx client with the admin key (Authorization header)."""
        client: httpx.Client = self.service.http
        return client

    @property
    def admin_key(self) -> str:
        key = admin_key(self.data_dir)
        assert key is not None
        return str(key)

    def make_key(self, role: str, tenant: str = "default") -> str:
        """A new key's token (``POST /v1/keys`` with the admin key)."""
        r = self.api.post("/v1/keys", json={"role": role, "tenant": tenant})
        assert r.status_code == 201, r.text
        token: str = r.json()["key"]
        return token


@pytest.fixture(scope="module")
def console_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleService]:
    """One real ``steadyvoice serve`` (piper engine, SQLite, one worker) for the module."""
    root = tmp_path_factory.mktemp("console")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYVOICE_")}
    env.update(
        STEADYVOICE_DATA_DIR=str(root / "data"),
        STEADYVOICE_METRICS_DIR=str(root / "metrics"),
        STEADYVOICE_ENGINE="piper",
        STEADYVOICE_WORKERS="1",
        STEADYVOICE_WORKER__SPARES="0",
        STEADYVOICE_JOBS__POLL_INTERVAL_SECONDS="0.2",
    )
    port = free_port()
    env["STEADYVOICE_API__PORT"] = str(port)
    service = Service(env, root / "serve.log", port, [])
    service.start()
    try:
        service.wait_up()
        service.wait_ready()
        downloads = root / "downloads"
        downloads.mkdir()
        yield ConsoleService(service, root / "data", downloads)
    finally:
        service.stop()


@pytest.fixture(scope="module")
def browser_args() -> list[str]:
    """Extra Chromium switches; a module overrides this fixture to add its own."""
    return []


@pytest.fixture(scope="module")
def browser(console_service: ConsoleService, browser_args: list[str]) -> Iterator[WebDriver]:
    """One headless Chromium for the module, downloads into ``console_service.downloads``."""
    for path in (CHROMIUM, CHROMEDRIVER):
        assert path.exists(), f"{path} is missing: run scripts/ensure-chromium.sh"
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager: never download anything
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in a container: Chromium's sandbox needs user namespaces
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
        "--autoplay-policy=no-user-gesture-required",
        "--mute-audio",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-sync",
        "--disable-component-update",
        "--password-store=basic",
        *browser_args,
    ):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(console_service.downloads),
            "download.prompt_for_download": False,
            "credentials_enable_service": False,
            "profile.password_manager_enabled": False,
        },
    )
    driver_log = console_service.downloads.parent / "chromedriver.log"
    service = DriverService(executable_path=str(CHROMEDRIVER), log_output=str(driver_log))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
