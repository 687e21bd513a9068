"""The conf/ Apache2 and nginx sites in front of the identity server: alice.xml through port 80."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from twisted.internet import utils
from twisted.trial.unittest import SkipTest, TestCase

from bitdust_node.identity.server_http import NOT_FOUND_BODY
from tests.identity import vectors
from tests.identity.support import (
    LISTEN,
    exchange,
    http_request,
    make_identity,
    split_response,
    start_server,
)

HELPER = Path(__file__).with_name("reverse_proxy.sh")
HOST = "host-a.com"


async def _helper(*args: str) -> tuple[str, int]:
    out, err, code = await utils.getProcessOutputAndValue("/bin/bash", [str(HELPER), *args], env=dict(os.environ))
    return (out + err).decode(errors="replace"), code


async def _through(address: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    return split_response(await exchange(80, request, address=address))


class ReverseProxyMixin:
    server_name = ""
    address = ""

    async def test_alice_through_port_80(self) -> None:
        test: TestCase = self  # type: ignore[assignment]
        if os.geteuid() != 0 and not shutil.which(self.server_name):
            raise SkipTest(f"{self.server_name} is not installed and we cannot install it")
        idserver = start_server(Path(test.mktemp()), host=HOST)
        test.addCleanup(idserver.stop)
        work = str(Path(test.mktemp()).resolve())
        backend = f"{LISTEN}:{idserver.web_port}"
        # registered first: a start that fails half-way must still be stopped
        test.addCleanup(_helper, "stop", self.server_name, work)
        store = str(idserver.root.resolve())
        # www-data must reach the folder, as the node's home lets it (trial's temp folders are 0700)
        idserver.root.parent.chmod(0o711)
        output, code = await _helper("start", self.server_name, self.address, backend, work, store)
        if code == 3:
            raise SkipTest(output.strip())
        test.assertEqual(code, 0, output)
        alice = make_identity("alice", vectors.private_key("alice"), hosts=(HOST,))
        # register as an official client would, through port 80
        status, _, body = await _through(self.address, http_request("GET", "/alice.xml", host=HOST))
        # not in the store folder: the node answers, with its own 404 page
        test.assertEqual((status, body), (404, NOT_FOUND_BODY))
        status, _, _ = await _through(self.address, http_request("POST", "/", alice, host=HOST))
        test.assertEqual(status, 200)
        status, headers, body = await _through(self.address, http_request("GET", "/alice.xml", host=HOST))
        test.assertEqual((status, body), (200, alice))
        test.assertEqual(headers["content-type"], "application/xml")
        test.assertIn("last-modified", headers)
        status, _, page = await _through(self.address, http_request("GET", "/", host=HOST))
        test.assertIn(f"Identities on {HOST}", page.decode())
        # the proxy forwards the client's address, which is the test's loopback address
        test.assertRegex(page.decode(), r"<!--CLIENT_HOST=127\.0\.0\.\d+:\d+-->")
        # the site's body cap refuses a big upload itself (its own error page; ours has no body)
        status, _, page = await _through(self.address, http_request("POST", "/", b"x" * 60_000, host=HOST))
        test.assertEqual(status, 413)
        test.assertIn(b"413", page)
        test.assertEqual(idserver.idserver.store.names(), ["alice"])
        _, direct, _ = await idserver.get("/alice.xml")
        test.assertEqual(headers["last-modified"], direct["last-modified"])
        # the web server reads the folder itself: a file the node has not loaded is served all the same
        bob = make_identity("bob", vectors.private_key("bob"), hosts=(HOST,))
        (idserver.root / "bob.xml").write_bytes(bob)
        status, headers, body = await _through(self.address, http_request("GET", "/bob.xml", host=HOST))
        test.assertEqual((status, body, headers["content-type"]), (200, bob, "application/xml"))
        test.assertIsNone(idserver.idserver.store.get("bob"))


class ApacheTests(ReverseProxyMixin, TestCase):
    server_name = "apache2"
    address = "127.0.0.13"
    timeout = 120


class NginxTests(ReverseProxyMixin, TestCase):
    server_name = "nginx"
    address = "127.0.0.14"
    timeout = 120
