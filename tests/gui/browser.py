"""Real headless Chromium for the web interface's tests, driven by Selenium with the system's chromedriver.

Nothing is downloaded: Selenium is given /usr/bin/chromedriver and /usr/bin/chromium, which skips its
driver manager, and SE_OFFLINE keeps that manager offline should anything reach it. The nodes run in the
test's reactor, so every Selenium call (a blocking HTTP request to chromedriver) runs in a thread.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from twisted.internet import threads
from twisted.trial.unittest import SkipTest, TestCase

from bitdust_node.api.rest import RestAPI
from bitdust_node.gui.front import LazyGui
from bitdust_node.gui.site import GuiSite
from bitdust_node.node import Node
from tests.support.nodes import eventually

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         "--window-size=1280,900")
# the README's pictures; a run writes them there only when asked, so a test run leaves the checkout clean
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
REFRESH = "BITDUST_SCREENSHOTS"
T = TypeVar("T")


def gui_of(node: Node) -> GuiSite:
    """The web interface a running node serves (the REST API's site resource knows its RestAPI, whose front it
    is, loaded by the first request)."""
    rest = node.rest_port.factory.resource.api
    assert isinstance(rest, RestAPI) and isinstance(rest.front, LazyGui)
    return rest.front.site()


def require_chromium() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        raise SkipTest(f"{' and '.join(missing)} not installed: apt-get install chromium chromium-driver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        raise SkipTest("selenium is not installed: pip install -e '.[test]'") from None


class Browser:
    def __init__(self, driver: Any, downloads: Path, pictures: Path) -> None:
        self.driver = driver
        self.downloads = downloads
        self.pictures = pictures

    @classmethod
    async def start(cls, test: TestCase, node: Node) -> Browser:
        """A fresh Chromium (its own profile and download folder), quit when the test ends, before `node`."""
        require_chromium()
        os.environ["SE_OFFLINE"] = "true"
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        profile = Path(tempfile.mkdtemp(prefix="bitdust-chromium-"))
        downloads = profile / "downloads"
        downloads.mkdir()
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile / 'profile'}")
        options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                                  "download.prompt_for_download": False})

        def launch() -> Any:
            driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
            driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
            return driver

        pictures = SCREENSHOTS if os.environ.get(REFRESH) == "1" else Path(test.mktemp()).resolve()
        browser = cls(await threads.deferToThread(launch), downloads, pictures)

        async def stop() -> None:
            await threads.deferToThread(browser.driver.quit)
            shutil.rmtree(profile, ignore_errors=True)
            # the live streams end with the browser's connections, before the node stops
            if node.rest_port is not None:
                await eventually(lambda: not gui_of(node).live.streams, timeout=20)

        test.addCleanup(stop)
        return browser

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        return await threads.deferToThread(work, *args)

    async def get(self, url: str) -> None:
        await self.run(self.driver.get, url)

    async def script(self, source: str, *args: Any) -> Any:
        return await self.run(self.driver.execute_script, source, *args)

    async def text(self, css: str) -> str:
        """The visible text of the first element matching `css`, or "" when there is none."""
        return str(await self.script("const e = document.querySelector(arguments[0]); return e ? e.innerText : ''",
                                     css))

    async def wait_text(self, css: str, wanted: str, timeout: float = 30.0) -> str:
        async def check() -> str | None:
            found = await self.text(css)
            return found if wanted in found else None

        return str(await eventually(check, timeout=timeout, interval=0.2))

    async def fill(self, element_id: str, value: str) -> None:
        from selenium.webdriver.common.by import By

        def work() -> None:
            element = self.driver.find_element(By.ID, element_id)
            element.clear()
            element.send_keys(value)

        await self.run(work)

    async def click(self, css: str) -> None:
        from selenium.webdriver.common.by import By

        await self.run(lambda: self.driver.find_element(By.CSS_SELECTOR, css).click())

    async def screenshot(self, name: str, tallest: int = 2400) -> Path:
        """The page as NAME.png (the window grown to the page's height, up to `tallest`): in docs/screenshots
        with BITDUST_SCREENSHOTS=1, else in the test's own folder."""
        height = int(await self.script("return document.documentElement.scrollHeight"))
        await self.run(self.driver.set_window_size, 1280, max(700, min(height + 140, tallest)))
        self.pictures.mkdir(parents=True, exist_ok=True)
        path = self.pictures / f"{name}.png"
        saved = await self.run(self.driver.save_screenshot, str(path))
        assert saved and path.stat().st_size > 10_000, f"no screenshot of {name}"
        await self.run(self.driver.set_window_size, 1280, 900)
        return path
