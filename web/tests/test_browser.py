"""End to end in a real headless Chromium: Hypercorn behind nginx, the page and its JSON API."""

import re
import tempfile
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.wait import WebDriverWait

from counter.config import Settings
from harness.servers import run_hypercorn, run_nginx
from harness.tools import require_tool

pytestmark = [pytest.mark.browser, pytest.mark.processes]

COUNT = (By.CSS_SELECTOR, "p.count")
WAIT = 10.0  # seconds for any one thing to appear on the page
# No sandbox: it needs a user namespace root in a container lacks; the rest keeps Chromium off the
# network and off /dev/shm (small in containers). https://developer.chrome.com/docs/chromium/headless
CHROMIUM_FLAGS = (
    "--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run "
    "--disable-background-networking --disable-component-update --disable-sync --disable-quic "
    "--window-size=1024,768"
)
# Runs in the page (same origin, under its CSP); plain values go back through WebDriver's callback.
POST_SCRIPT = """
const done = arguments[arguments.length - 1];
fetch("/api/counter", {method: "POST", headers: {Accept: "application/json"}})
  .then(async (response) => done({status: response.status, body: await response.json()}))
  .catch((error) => done({status: 0, body: String(error)}));
"""


@pytest.fixture(scope="module")
def driver() -> Iterator[webdriver.Chrome]:
    """One headless Chromium on Debian's binaries (Selenium Manager downloads none); quit after."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = require_tool("chromium")
        for flag in [*CHROMIUM_FLAGS.split(), f"--user-data-dir={profile}"]:
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(executable_path=require_tool("chromedriver"))
        with webdriver.Chrome(options=options, service=service) as browser:
            browser.set_page_load_timeout(30)
            browser.set_script_timeout(WAIT)
            yield browser


def shown_count(driver: webdriver.Chrome) -> int:
    """N from the visible "Counter: N" paragraph, once it shows one."""
    WebDriverWait(driver, WAIT).until(ec.text_to_be_present_in_element(COUNT, "Counter: "))
    text = driver.find_element(*COUNT).text
    match = re.fullmatch(r"Counter: (\d+)", text.strip())
    assert match, text
    return int(match[1])


def test_page_is_complete_styled_self_contained_and_counts_each_reload_once(
    driver: webdriver.Chrome, settings: Settings
) -> None:
    with run_hypercorn(settings) as app, run_nginx([app.netloc]) as site:
        driver.get(site.url + "/")
        first = shown_count(driver)
        assert driver.title.startswith(f"Counter: {first} ")
        assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang")
        assert driver.find_element(By.TAG_NAME, "h1").text

        assert driver.execute_script("return location.origin;") == site.url
        resources: list[str] = driver.execute_script(
            "return performance.getEntriesByType('resource').map((entry) => entry.name);"
        )
        assert [url for url in resources if not url.startswith(site.url + "/")] == []
        assert site.url + "/static/style.css" in resources
        body = driver.find_element(By.TAG_NAME, "body")  # styled: a browser's default is 8px
        assert body.value_of_css_property("margin-top") == "0px"

        old = driver.find_element(*COUNT)
        driver.refresh()
        WebDriverWait(driver, WAIT).until(ec.staleness_of(old))  # the old page is gone
        assert shown_count(driver) == first + 1
        reply = driver.execute_async_script(POST_SCRIPT)  # the JSON API, from the page itself
        assert reply == {"status": 200, "body": {"count": first + 2}}
        console = driver.get_log("browser")  # type: ignore[no-untyped-call]
        assert [entry for entry in console if entry["level"] == "SEVERE"] == []
