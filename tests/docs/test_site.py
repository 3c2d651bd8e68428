"""The documentation site, built strictly and opened in headless Chromium: its search finds
"replay", and its configuration page lists every setting of the settings models.

Chromium and its chromedriver are Debian's (`make chromium`, a prerequisite of `make docs`
and so of `make test`, installs them); Selenium drives them at their fixed paths, so nothing
is downloaded. The site is served by Python's http.server on 127.0.0.1 on a free port, and
it, chromedriver and Chromium are stopped at the end, or die with this process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from components.settings.validation import Settings
from docs.config_reference import settings
from local.processes import Child, start_static_server
from tests.docs.pages import ROOT

pytestmark = pytest.mark.timeout(300)

# Debian's by default; CHROMIUM and CHROMEDRIVER name another matching pair (GitHub's
# Ubuntu runners ship Google Chrome and its ChromeDriver, and Ubuntu's chromium is a snap).
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
WAIT_S = 30


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Child]:
    """The site as `make docs` builds it (--strict), into a directory of its own."""
    built = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(built)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    server = start_static_server(built, tmp_path_factory.mktemp("server") / "site.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.fail(f"{CHROMIUM} or {CHROMEDRIVER} is missing: `make chromium` installs them")
    # chromedriver in its own process group (stopped whole below), and through
    # local.die_with_parent, so that it dies with this process if it is killed.
    wrapper = tmp_path_factory.mktemp("driver") / "chromedriver"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'exec "{sys.executable}" -m local.die_with_parent {os.getpid()} -- {CHROMEDRIVER} "$@"\n'
    )
    wrapper.chmod(0o755)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('profile')}")
    service = Service(
        executable_path=str(wrapper),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        popen_kw={"start_new_session": True, "cwd": str(ROOT)},
    )
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()
        process = service.process
        if process is not None and process.poll() is None:
            os.killpg(process.pid, 9)


def _search(browser: WebDriver, site: Child, query: str) -> list[str]:
    """Types QUERY into the site's search box; the titles of the results shown."""
    browser.get(f"http://{site.address}/")
    box = WebDriverWait(browser, WAIT_S).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "input.md-search__input"))
    )
    # The search index loads in a web worker; until it is ready the box is disabled or
    # answers "Initializing search".
    WebDriverWait(browser, WAIT_S).until(
        lambda _: browser.execute_script(
            "return document.querySelector('.md-search-result__meta') !== null"
            " && !document.querySelector('.md-search-result__meta').textContent"
            ".includes('Initializing')"
        )
    )
    browser.execute_script("arguments[0].focus()", box)
    box.send_keys(query)
    meta = browser.find_element(By.CSS_SELECTOR, ".md-search-result__meta")
    WebDriverWait(browser, WAIT_S).until(
        lambda _: "matching document" in meta.text or "No matching" in meta.text
    )
    items = browser.find_elements(By.CSS_SELECTOR, ".md-search-result__item h1")
    return [item.get_attribute("textContent") or "" for item in items]


def test_search_finds_replay(browser: WebDriver, site: Child) -> None:
    found = _search(browser, site, "replay")
    assert "Replay" in [title.strip() for title in found], found


def test_the_home_page_loads_without_errors_offline(browser: WebDriver, site: Child) -> None:
    """Nothing from a CDN (fonts, Mermaid): offline, a failed script stopped the search."""
    browser.get(f"http://{site.address}/")
    WebDriverWait(browser, WAIT_S).until(
        lambda _: browser.execute_script("return document.readyState") == "complete"
    )
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]  # pyright: ignore[reportAttributeAccessIssue]
    assert errors == []


def test_search_can_come_back_empty(browser: WebDriver, site: Child) -> None:
    """The check above can fail: a word on no page finds nothing."""
    assert _search(browser, site, "xylophonequark") == []


def test_the_configuration_page_lists_every_setting(browser: WebDriver, site: Child) -> None:
    browser.get(f"http://{site.address}/configuration/")
    table = WebDriverWait(browser, WAIT_S).until(
        lambda _: next(
            (
                t
                for t in browser.find_elements(By.CSS_SELECTOR, "article table")
                if "cloudrun-tasks:pipelines.<pipeline>.queue.maxAttempts" in t.text
            ),
            None,
        )
    )
    assert table is not None  # until() returns the first truthy value
    keys = [
        cell.text.strip()
        for cell in table.find_elements(By.CSS_SELECTOR, "tbody tr td:first-child")
    ]
    expected = [setting.key for setting in settings()]
    assert keys == expected
    # Every field of every settings model has its row, whichever route reaches it (each
    # model is reached under exactly one key, so one row per field).
    models = {m for m in _subclasses(Settings) if m.__module__.startswith("components.settings")}
    for model in models:
        for name, field in model.model_fields.items():
            key = field.alias or name
            assert any(k == key or k.endswith((f".{key}", f":{key}")) for k in keys), (
                model.__name__,
                key,
            )
    assert len(keys) == len(set(keys)) == sum(len(m.model_fields) for m in models)


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found
