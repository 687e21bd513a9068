"""The web interface through StubTreq on a node with no sockets: what shows without a session, the login, the
REST API that a session never opens, CSRF and origin checks on changes, the Host check."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from treq.testing import StubTreq
from twisted.trial.unittest import TestCase

from bitdust_node.api.rest import RestAPI
from bitdust_node.api.routes import ApiContext
from bitdust_node.gui.site import GuiSite
from bitdust_node.node import Node

BASE = "http://127.0.0.1:8180"


class GuiSiteTests(TestCase):
    def setUp(self) -> None:
        self.node = Node(Path(self.mktemp()))
        for definition in list(self.node.settings.definitions.values()):
            if definition.key.endswith("/enabled") and definition.key != "services/network/enabled":
                self.node.settings.set(definition.key, False)
        self.node.prepare()
        assert self.node.graph is not None and self.node.ctx is not None
        self.node.graph.reconcile()
        api = ApiContext(self.node.ctx, self.node.graph, lambda: BASE, self.node.request_stop)
        self.rest = RestAPI(api, self.node.api_secret, front=lambda check: GuiSite(api, check))
        self.treq = StubTreq(self.rest.site().resource)
        self.addCleanup(self.node.graph.shutdown)

    async def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                      body: Any = None) -> tuple[int, Any, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        response = await self.treq.request(method, BASE + path, data=data, allow_redirects=False,
                                           headers={k: [v] for k, v in (headers or {}).items()})
        return response.code, response.headers, await response.content()

    async def login(self) -> tuple[str, str]:
        """A session cookie and its CSRF token, as `bitdust gui` and a browser get them."""
        code, _, content = await self.request("POST", "/gui/token/v1", {"api_secret": self.node.api_secret})
        self.assertEqual(code, 200, content)
        url = json.loads(content)["result"]["url"]
        self.assertTrue(url.startswith(BASE + "/gui/login?token="), url)
        code, headers, _ = await self.request("GET", url.removeprefix(BASE))
        self.assertEqual(code, 303)
        self.assertEqual(headers.getRawHeaders("location"), ["/"])
        cookie = headers.getRawHeaders("set-cookie")[0]
        self.assertRegex(cookie, r"^bitdust_gui_8180=[\w-]+; HttpOnly; SameSite=Strict; Path=/$")
        cookie = cookie.split(";")[0]
        code, _, page = await self.request("GET", "/", {"cookie": cookie})
        self.assertEqual(code, 200)
        found = re.search(rb'<meta name="csrf-token" content="([\w-]+)"', page)
        assert found is not None
        return cookie, found.group(1).decode()

    async def test_without_a_session_nothing_of_the_node_shows(self) -> None:
        for path in ("/", "/gui/files", "/gui/settings", "/gui/logs", "/gui/"):
            code, _headers, page = await self.request("GET", path)
            self.assertEqual(code, 401, path)
            self.assertIn(b"<code>bitdust gui</code>", page)
            for secret_of_the_node in (b"service_", b"csrf", self.node.api_secret.encode(), b"panel"):
                self.assertNotIn(secret_of_the_node, page)
        for path in ("/gui/events?page=overview", "/gui/download/abcdefghijk"):
            code, _, content = await self.request("GET", path)
            self.assertEqual(code, 401, path)
            self.assertEqual(json.loads(content)["ok"], False)
        code, _, _ = await self.request("POST", "/gui/api/config/set/v1", body={"key": "logs/format", "value": "json"})
        self.assertEqual(code, 401)
        self.assertEqual(self.node.settings.get("logs/format"), "text")

    async def test_a_token_wants_the_api_secret(self) -> None:
        for headers in ({}, {"api_secret": "wrong"}):
            code, _, content = await self.request("POST", "/gui/token/v1", headers)
            self.assertEqual(code, 401)
            self.assertNotIn(b"token=", content)

    async def test_a_login_link_works_once(self) -> None:
        _code, _, content = await self.request("POST", "/gui/token/v1", {"api_secret": self.node.api_secret})
        path = json.loads(content)["result"]["url"].removeprefix(BASE)
        code, headers, _ = await self.request("GET", path)
        self.assertEqual(code, 303)
        code, headers, page = await self.request("GET", path)
        self.assertEqual(code, 403)
        self.assertIsNone(headers.getRawHeaders("set-cookie"))
        self.assertIn(b"expired", page)

    async def test_a_session_shows_the_node_but_never_opens_the_rest_api(self) -> None:
        cookie, _csrf = await self.login()
        code, headers, page = await self.request("GET", "/", {"cookie": cookie})
        self.assertIn(b"service_network", page)
        self.assertIn(b'<span class="badge good">ON</span>', page)
        self.assertIn(b"default-src 'none'", headers.getRawHeaders("content-security-policy")[0].encode())
        self.assertEqual(headers.getRawHeaders("x-frame-options"), ["DENY"])
        self.assertEqual(headers.getRawHeaders("referrer-policy"), ["no-referrer"])
        self.assertNotIn(b"<script>", page, "no inline script")
        for path in ("/service/list/v1", "/config/list/v1", "/network/status/v1"):
            code, _, content = await self.request("GET", path, {"cookie": cookie})
            self.assertEqual(code, 401, path)
            self.assertEqual(json.loads(content)["status"], "ERROR")

    async def test_changes_want_the_csrf_token_and_our_origin(self) -> None:
        cookie, csrf = await self.login()
        change = {"key": "logs/format", "value": "json"}
        refused = [
            {"cookie": cookie},
            {"cookie": cookie, "x-csrf-token": "wrong"},
            {"cookie": cookie, "x-csrf-token": csrf, "origin": "http://127.0.0.1:3000"},
            {"cookie": cookie, "x-csrf-token": csrf, "sec-fetch-site": "same-site"},
        ]
        for headers in refused:
            code, _, content = await self.request("POST", "/gui/api/config/set/v1", headers, change)
            self.assertEqual(code, 401, (headers, content))
            self.assertEqual(self.node.settings.get("logs/format"), "text")
        good = {"cookie": cookie, "x-csrf-token": csrf, "origin": BASE, "sec-fetch-site": "same-origin"}
        code, _, content = await self.request("POST", "/gui/api/config/set/v1", good, change)
        self.assertEqual(code, 200, content)
        self.assertEqual(self.node.settings.get("logs/format"), "json")
        # a bad value is refused with the setting's own message, and nothing changes
        code, _, content = await self.request("POST", "/gui/api/config/set/v1", good,
                                              {"key": "interface/api/rest-http-port", "value": "99999"})
        self.assertEqual(code, 400)
        self.assertIn("65535", json.loads(content)["error"])
        self.assertEqual(self.node.settings.get("interface/api/rest-http-port"), 8180)
        # only the endpoints the pages need: writing the private key somewhere is not one of them
        code, _, _ = await self.request("POST", "/gui/api/identity/backup/v1", good,
                                        {"destination_path": "/tmp/key"})
        self.assertEqual(code, 404)
        # after logging out the cookie opens nothing
        code, headers, _ = await self.request("POST", "/gui/logout", good)
        self.assertEqual(code, 200)
        self.assertIn("Max-Age=0", headers.getRawHeaders("set-cookie")[0])
        code, _, _ = await self.request("GET", "/", {"cookie": cookie})
        self.assertEqual(code, 401)

    async def test_a_foreign_host_name_gets_nothing(self) -> None:
        cookie, _csrf = await self.login()
        for host in ("evil.example:8180", "127.0.0.1:9999", "evil.example"):
            for path in ("/", "/gui/static/app.js", "/gui/login?token=x"):
                code, _, content = await self.request("GET", path, {"host": host, "cookie": cookie})
                self.assertEqual(code, 421, (host, path))
                self.assertNotIn(b"service_", content)
        code, _, _ = await self.request("GET", "/", {"host": "localhost:8180", "cookie": cookie})
        self.assertEqual(code, 200)

    async def test_static_files_are_served_by_name_only(self) -> None:
        code, headers, content = await self.request("GET", "/gui/static/app.js")
        self.assertEqual(code, 200)
        self.assertEqual(headers.getRawHeaders("content-type"), ["text/javascript; charset=utf-8"])
        self.assertIn(b"X-CSRF-Token", content)
        for name in ("../site.py", "nope.js", "app.py", "%2e%2e/site.py"):
            code, _, _ = await self.request("GET", "/gui/static/" + name)
            self.assertEqual(code, 404, name)
