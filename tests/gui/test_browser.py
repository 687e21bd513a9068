"""The web interface in real headless Chromium against real nodes on loopback.

Opened as a user would (`bitdust gui --print-url`), it shows the global id and every service with its
state; a bad setting is refused beside its field and changes nothing; without a session neither the page
nor the API shows anything of the node. On a small storage network a file uploaded in the browser is in
`bitdust file list` and downloads identical, a message sent from the browser is in the peer's history, and
one sent to us appears without a reload. The pages are photographed (into docs/screenshots/ with
BITDUST_SCREENSHOTS=1).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from twisted.trial.unittest import TestCase

from bitdust_node.node import Node
from bitdust_node.services.tcp_connections import TcpConnectionsService
from tests.gui.browser import Browser, require_chromium
from tests.storage.network import customer_of, suppliers_known
from tests.support import network
from tests.support.nodes import api, eventually, run_cli, start_node

SERVER = "127.0.0.120"
SUPPLIERS = ["127.0.0.121", "127.0.0.122"]
ALICE = "127.0.0.123"
BOB = "127.0.0.124"
UPLOAD_BYTES = 1_500_000  # three pieces of the browser's upload


def reading_paused(node: Node) -> Callable[[], None]:
    """A node's peer-to-peer connections read no more (a supplier too busy to answer); what resumes them."""
    assert node.graph is not None
    service = node.graph.service("tcp_connections")
    assert isinstance(service, TcpConnectionsService) and service.tcp is not None
    transports = [connection.transport for connection in service.tcp.connections]
    for transport in transports:
        transport.stopReading()

    def resume() -> None:
        for transport in transports:
            transport.startReading()

    return resume


def settings_for(role: str) -> dict[str, object]:
    """As tests/storage/network.py makes them, around this test's own seed."""
    switches = {"services/supplier/enabled": role == "supplier", "services/customer/enabled": role == "customer",
                "services/customer/suppliers-number": 2}
    return network.node_settings(SERVER, role, **switches)


async def open_gui(node: Node, browser: Browser) -> None:
    """What `bitdust gui` does, with the URL it prints opened in the browser."""
    printed = await run_cli(node.home, "gui", "--print-url")
    assert printed.code == 0, printed.err
    url = printed.out.strip()
    assert url.startswith(node.rest_url() + "/gui/login?token="), url
    await browser.get(url)


class OverviewAndSettingsTests(TestCase):
    timeout = 180

    def setUp(self) -> None:
        require_chromium()

    async def test_overview_settings_and_nothing_without_a_session(self) -> None:
        node = await start_node(self, SERVER, network.node_settings(SERVER, "server"))
        status, _reply = await api(node, "POST", "/identity/create/v1", {"username": "operator"})
        self.assertEqual(status, 200)
        assert node.graph is not None
        await node.graph.settled()
        global_id = node.identity.require().global_id
        browser = await Browser.start(self, node)
        # without a session: the page says what to do and nothing else, the API wants its secret
        await browser.get(node.rest_url() + "/")
        anonymous = await browser.script("return document.documentElement.outerHTML")
        self.assertIn("bitdust gui", anonymous)
        for private in (global_id, "service_", "csrf", node.api_secret):
            self.assertNotIn(private, anonymous)
        for path in ("/service/list/v1", "/network/status/v1", "/config/list/v1"):
            status, reply = await api(node, "GET", path, secret=False)
            self.assertEqual(status, 401)
            self.assertNotIn("service_", str(reply))
        # `bitdust gui --print-url`, opened: the overview, with the global id and every service
        await open_gui(node, browser)
        self.assertEqual(await browser.script("return location.pathname + location.search"), "/")
        self.assertEqual(await browser.text(".global-id"), global_id)
        status, services = await api(node, "GET", "/service/list/v1")

        async def every_service_shown() -> bool:
            rows = await browser.script(
                "return [...document.querySelectorAll('#panel-services tbody tr')]"
                ".map(r => [r.cells[0].innerText, r.cells[1].innerText])")
            return dict(rows) == {s["name"]: s["state"] for s in services["result"]}

        await eventually(every_service_shown, timeout=20)
        self.assertGreaterEqual(len(services["result"]), 15)
        # the session opens the pages, never the REST API
        await browser.get(node.rest_url() + "/service/list/v1")
        self.assertIn("api_secret header is missing", await browser.text("body"))
        # keyboard: the first Tab reaches the skip link, a narrow window scrolls nowhere sideways
        await browser.get(node.rest_url() + "/")
        await browser.script("document.activeElement.blur()")
        from selenium.webdriver.common.keys import Keys

        await browser.run(lambda: browser.driver.switch_to.active_element.send_keys(Keys.TAB))
        self.assertEqual(await browser.script("return document.activeElement.className"), "skip")
        await browser.run(browser.driver.set_window_size, 420, 900)
        overflow = await browser.script("return document.documentElement.scrollWidth - window.innerWidth")
        self.assertLessEqual(overflow, 0)
        await browser.run(browser.driver.set_window_size, 1280, 900)
        # a bad value is refused beside its field, and nothing changes
        await browser.get(node.rest_url() + "/gui/settings")
        field = "s-interface-api-rest-http-port"
        await browser.fill(field, "99999")
        await browser.click("form[data-key='interface/api/rest-http-port'] button")
        error = await browser.wait_text(f"#{field}-error", "65535")
        self.assertIn("at most 65535", error)
        invalid = await browser.script(f"return document.getElementById('{field}').getAttribute('aria-invalid')")
        self.assertEqual(invalid, "true")
        self.assertEqual(node.settings.get("interface/api/rest-http-port"), 8180)
        shown = await run_cli(node.home, "get", "interface/api/rest-http-port")
        self.assertIn(": 8180", shown.out)
        # a good one is applied at once
        await browser.fill("s-services-proxy-server-routes-limit", "30")
        await browser.click("form[data-key='services/proxy-server/routes-limit'] button")
        await browser.wait_text("#s-services-proxy-server-routes-limit-error", "Applied")
        self.assertEqual(node.settings.get("services/proxy-server/routes-limit"), 30)


class StorageAndMessagesTests(TestCase):
    timeout = 300

    def setUp(self) -> None:
        require_chromium()

    async def test_upload_download_messages_and_screenshots(self) -> None:
        server = await start_node(self, SERVER, settings_for("server"))
        suppliers = [await network.start_named(self, f"supplier{number}", address, settings_for("supplier"))
                     for number, address in enumerate(SUPPLIERS)]
        await suppliers_known(server, len(SUPPLIERS))
        alice = await network.start_named(self, "alice", ALICE, settings_for("customer"))
        bob = await network.start_named(self, "bob", BOB, settings_for("bob"))
        await eventually(lambda: len(customer_of(alice).suppliers.connected()) == 2, timeout=60)
        browser = await Browser.start(self, alice)
        await open_gui(alice, browser)
        await browser.wait_text(".global-id", "alice@")

        # a file uploaded in the browser is in `bitdust file list` and downloads identical
        work = Path(self.mktemp()).resolve()
        work.mkdir()
        original = work / "report.bin"
        original.write_bytes(os.urandom(UPLOAD_BYTES))
        await browser.get(alice.rest_url() + "/gui/files")
        await browser.run(lambda: browser.driver.find_element("id", "upload-file").send_keys(str(original)))
        await browser.fill("upload-remote", "docs/report.bin")
        await browser.click("#upload button[type=submit]")
        await browser.wait_text("#upload-status", "docs/report.bin", timeout=60)
        await browser.wait_text("#panel-transfers", "done", timeout=120)
        listed = await run_cli(alice.home, "file", "list")
        self.assertEqual(listed.code, 0, listed.err)
        self.assertIn("docs/report.bin", listed.out)
        await browser.wait_text("#panel-files", "report.bin", timeout=30)
        await browser.click("button.download[data-path='docs/report.bin']")
        fetched = browser.downloads / "report.bin"
        try:
            await eventually(lambda: fetched.is_file() and fetched.stat().st_size == UPLOAD_BYTES, timeout=30)
        except AssertionError:
            status = await browser.text("#upload-status")
            raise AssertionError(f"not downloaded: {status!r}, {list(browser.downloads.iterdir())}") from None
        self.assertEqual(fetched.read_bytes(), original.read_bytes())
        self.assertEqual(list((alice.home / "temp").rglob("report.bin")), [], "nothing staged is left behind")
        await browser.screenshot("files")

        # a message sent from the browser is in the peer's history
        await browser.get(alice.rest_url() + "/gui/messages")
        await browser.fill("send-to", "bob")
        await browser.fill("send-text", "hello from the browser")
        await browser.click("#send button[type=submit]")

        async def bob_has_it() -> bool:
            shown = await run_cli(bob.home, "msg", "history")
            return "<- alice@127.0.0.120_8084: hello from the browser" in shown.out

        await eventually(bob_has_it, timeout=60, interval=0.5)
        # the page moved to the conversation with bob; one from bob appears there without a reload
        await browser.wait_text("#panel-conversation", "hello from the browser")
        await browser.script("window.__not_reloaded = 42")
        sent = await run_cli(bob.home, "msg", "send", "alice", "hello back, live")
        self.assertEqual(sent.code, 0, sent.err)
        await browser.wait_text("#panel-conversation", "hello back, live", timeout=30)
        self.assertEqual(await browser.script("return window.__not_reloaded"), 42)
        await browser.wait_text("#panel-correspondents", "bob@127.0.0.120_8084")
        await browser.screenshot("messages")

        for page, tallest in (("network", 2400), ("settings", 2400), ("logs", 1200)):
            await browser.get(f"{alice.rest_url()}/gui/{page}")
            await browser.screenshot(page, tallest)
        await browser.get(alice.rest_url() + "/")
        await browser.wait_text("#panel-space", "Used (customer)")
        await browser.screenshot("overview")

        # an upload held up by suppliers that read nothing (nothing is acknowledged) is stopped from Transfers
        stuck = work / "stuck.bin"
        stuck.write_bytes(os.urandom(4 * UPLOAD_BYTES))
        resume = [reading_paused(supplier) for supplier in suppliers]
        status, reply = await api(alice, "POST", "/file/upload/start/v1",
                                  {"local_path": str(stuck), "remote_path": "stuck.bin"})
        self.assertEqual(status, 200, reply)
        await browser.get(alice.rest_url() + "/gui/files")
        await browser.wait_text("#panel-transfers", "running")
        await browser.click("button.stop[data-path='stuck.bin']")
        await browser.wait_text("#upload-status", "The upload of stuck.bin is stopped.")
        await browser.wait_text("#panel-transfers", "stopped by the user")
        for again in resume:
            again()
        self.assertNotIn("stuck.bin", (await run_cli(alice.home, "file", "list")).out)

        # deleting it in the browser (after the confirmation) forgets it everywhere
        await browser.get(alice.rest_url() + "/gui/files")
        await browser.click("button.delete[data-path='docs/report.bin']")
        await browser.run(lambda: browser.driver.switch_to.alert.accept())
        await browser.wait_text("#upload-status", "docs/report.bin deleted")

        async def forgotten() -> bool:
            return "report.bin" not in await browser.text("#panel-files")

        await eventually(forgotten, timeout=30)
        listed = await run_cli(alice.home, "file", "list")
        self.assertNotIn("docs/report.bin", listed.out)
