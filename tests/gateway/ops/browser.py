"""A real headless Chromium (Debian's ``chromium`` and ``chromium-driver``) driven by Selenium,
for tests of the status page. Every call runs in a worker thread, so that the gateway serving
the page on the test's event loop keeps answering meanwhile."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio.to_thread
import attrs
import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1200,900",
)
"""The network is closed: without these, Chromium stalls on what it would fetch."""
INSTALL = "apt-get install -y chromium chromium-driver (what .ci/run does)"


@attrs.define
class Browser:
    """One Chromium window."""

    driver: Any

    async def open(self, url: str) -> None:
        await anyio.to_thread.run_sync(self.driver.get, url)

    async def run(self, script: str, *args: object) -> Any:
        """Run ``script`` (a function body: ``return ...``) in the page."""
        return await anyio.to_thread.run_sync(lambda: self.driver.execute_script(script, *args))

    async def wait_for(self, script: str, *args: object, timeout: float = 15) -> Any:
        """Until ``script`` returns something truthy; that value."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.run(script, *args)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"never true in the page: {script}")
            await anyio.sleep(0.1)

    async def cdp(self, command: str, **params: object) -> Any:
        return await anyio.to_thread.run_sync(lambda: self.driver.execute_cdp_cmd(command, params))

    def cookies(self) -> list[dict[str, Any]]:
        cookies: list[dict[str, Any]] = self.driver.get_cookies()
        return cookies


@contextmanager
def headless_chromium() -> Iterator[Browser]:
    """Chromium with a fresh profile; the test is skipped where none is installed."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:  # pragma: no cover - the test extra installs it
        pytest.skip("the selenium package is missing: pip install -e '.[test]'")
    if chromium is None or driver_path is None:
        pytest.skip(f"no headless browser here: {INSTALL}")
    with tempfile.TemporaryDirectory(prefix="threadgate-chromium-") as profile:
        options = Options()
        options.binary_location = chromium
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
        driver.set_page_load_timeout(20)
        try:
            yield Browser(driver)
        finally:
            driver.quit()
