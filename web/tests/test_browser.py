"""End to end in a real headless Chromium: Hypercorn behind nginx, the page and its JSON API."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.wait import WebDriverWait

from counter.config import Settings
from harness.servers import Server, run_hypercorn, run_nginx
from harness.tools import require_tool

pytestmark = [pytest.mark.browser, pytest.mark.processes]

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
COUNTER = re.compile(r"^Counter: (\d+)$")
WAIT = 10.0  # seconds for any one thing to appear on the page
# No sandbox: it needs a user namespace root in a container lacks; the rest keeps Chromium off the
# network and off /dev/shm (small in containers). https://developer.chrome.com/docs/chromium/headless
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-quic", "--window-size=1024,768",
]  # fmt: skip
# Runs in the page (same origin, under its CSP); plain values go back through WebDriver's callback.
FETCH_SCRIPT = """
const [method, done] = [arguments[0], arguments[arguments.length - 1]];
fetch("/api/counter", {method, headers: {Accept: "application/json"}})
  .then(async (response) => done({status: response.status, body: await response.json()}))
  .catch((error) => done({status: 0, body: String(error)}));
"""


@pytest.fixture(scope="module")
def site(settings: Settings) -> Iterator[Server]:
    """nginx on a free port in front of Hypercorn on the test database."""
    with run_hypercorn(settings) as app, run_nginx([app.netloc]) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def driver() -> Iterator[webdriver.Chrome]:
    """One headless Chromium for the module on Debian's binaries (so Selenium Manager never
    downloads any); always quit at the end."""
    chromium = require_tool("chromium")
    chromedriver = require_tool("chromedriver")
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        browser = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
        try:
            browser.set_page_load_timeout(30)
            browser.set_script_timeout(WAIT)
            yield browser
        finally:
            browser.quit()


def shown_count(driver: webdriver.Chrome) -> tuple[int, WebElement]:
    """N from the visible "Counter: N" paragraph, once it shows one; and the paragraph."""
    locator = (By.CSS_SELECTOR, "p.count")
    WebDriverWait(driver, WAIT).until(ec.text_to_be_present_in_element(locator, "Counter: "))
    element = driver.find_element(*locator)
    match = COUNTER.match(element.text.strip())
    assert match, element.text
    return int(match[1]), element


def open_page(driver: webdriver.Chrome, url: str) -> int:
    """Forget earlier console output, load `url` (which counts a visit); the count shown."""
    console_errors(driver)  # reading the log empties it
    driver.get(url)
    return shown_count(driver)[0]


def reload_page(driver: webdriver.Chrome) -> int:
    """Reload, wait until the old page is gone, and read the new count."""
    old = shown_count(driver)[1]
    driver.refresh()
    WebDriverWait(driver, WAIT).until(ec.staleness_of(old))
    return shown_count(driver)[0]


def fetch_counter(driver: webdriver.Chrome, method: str) -> dict[str, Any]:
    """Call the JSON API from the page itself (same origin, through nginx); status and body."""
    return driver.execute_async_script(FETCH_SCRIPT, method)  # type: ignore[no-any-return]


def console_errors(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """The SEVERE console entries since the last read (which empties chromedriver's log)."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [entry for entry in entries if entry["level"] == "SEVERE"]


def test_reload_counts_once_and_the_api_agrees(driver: webdriver.Chrome, site: Server) -> None:
    first = open_page(driver, site.url + "/")
    assert reload_page(driver) == first + 1
    assert fetch_counter(driver, "GET") == {"status": 200, "body": {"count": first + 1}}
    assert fetch_counter(driver, "POST") == {"status": 200, "body": {"count": first + 2}}
    assert fetch_counter(driver, "GET") == {"status": 200, "body": {"count": first + 2}}
    assert console_errors(driver) == []


def test_page_is_complete_styled_and_self_contained(driver: webdriver.Chrome, site: Server) -> None:
    count = open_page(driver, site.url + "/")
    assert driver.title.startswith(f"Counter: {count} ")
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang")
    assert driver.find_element(By.TAG_NAME, "h1").text

    origin = driver.execute_script("return location.origin;")
    assert origin == site.url
    resources: list[str] = driver.execute_script(
        "return performance.getEntriesByType('resource').map((entry) => entry.name);"
    )
    assert [url for url in resources if not url.startswith(origin + "/")] == []
    assert origin + "/static/style.css" in resources

    # The stylesheet applied: browser defaults are an 8px margin, block layout, no corners.
    body, main = driver.find_element(By.TAG_NAME, "body"), driver.find_element(By.TAG_NAME, "main")
    assert body.value_of_css_property("margin-top") == "0px"
    assert body.value_of_css_property("display") == "grid"
    assert main.value_of_css_property("border-top-left-radius") == "16px"

    ARTIFACTS.mkdir(exist_ok=True)
    assert driver.save_screenshot(str(ARTIFACTS / "counter.png"))
    assert console_errors(driver) == []
