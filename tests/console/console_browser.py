"""Helpers for the console's browser tests: sign in through the form, wait for the page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from processes import poll  # type: ignore[import-not-found]
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

WAIT = 30.0  # seconds any one thing may take to appear in the page


def sign_in(browser: WebDriver, url: str, key: str) -> None:
    """Sign in through the form, as a person would (any earlier session is signed out first)."""
    browser.delete_all_cookies()
    browser.get(f"{url}/ui/signin")
    browser.find_element(By.ID, "key").send_keys(key)
    browser.find_element(By.CSS_SELECTOR, "#signin-form button[type=submit]").click()
    wait_for(browser, lambda b: "/ui/signin" not in b.current_url, "the console after sign-in")


def wait_for(browser: WebDriver, check: Callable[[WebDriver], Any], what: str) -> Any:
    """Poll ``check(browser)`` until it is truthy (``WAIT`` seconds at most)."""
    return poll(lambda: check(browser), WAIT, what, every=0.1)


def text_of(browser: WebDriver, element_id: str) -> str:
    return str(browser.find_element(By.ID, element_id).text)


def page_source_has_no(browser: WebDriver, secret: str) -> bool:
    return secret not in browser.page_source
