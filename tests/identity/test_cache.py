"""The identity cache: fetch over HTTP from a real server, verify, keep on disk, refuse impostors."""

from __future__ import annotations

from pathlib import Path

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from bitdust_node.errors import NotFound
from bitdust_node.identity import cache as cache_module
from bitdust_node.identity.cache import IdentityCache, IdentityMismatch
from bitdust_node.net.http import CappedHttp
from tests.identity import vectors
from tests.identity.support import LISTEN, make_identity, start_server


class CacheTests(TestCase):
    def setUp(self) -> None:
        self.server = start_server(Path(self.mktemp()), host=LISTEN)
        self.addCleanup(self.server.stop)
        self.root = Path(self.mktemp())
        self.cache = IdentityCache(self.root, CappedHttp(reactor, timeout=5))
        self.cache.load()

    def url(self, name: str) -> str:
        return f"http://{LISTEN}:{self.server.web_port}/{name}.xml"

    def bob(self, revision: int = 0, key_name: str = "bob") -> bytes:
        host = f"{LISTEN}:{self.server.web_port}"
        return make_identity("bob", vectors.private_key(key_name), hosts=(host,), revision=revision)

    async def test_fetch_verify_keep_and_reload(self) -> None:
        self.server.idserver.receive(self.bob())
        identity = await self.cache.fetch(self.url("bob"))
        self.assertEqual(identity.name, "bob")
        self.assertIs(self.cache.get(self.url("bob")), identity)
        again = IdentityCache(self.root, CappedHttp(reactor))
        again.load()
        self.assertEqual(again.get(self.url("bob")), identity)
        self.assertEqual([i.name for i in again.items()], ["bob"])

    async def test_the_same_identity_again_is_not_written_again(self) -> None:
        """Every ping carries its sender's identity: an unchanged one costs no write (nor fsync) to the disk."""
        xml = self.bob(revision=3)
        self.cache.accept(self.url("bob"), xml)
        written: list[Path] = []
        self.patch(cache_module, "write_secret_file", lambda path, data: written.append(path))
        for _ in range(5):
            self.cache.accept(self.url("bob"), xml)
        self.assertEqual(written, [])
        self.cache.accept(self.url("bob"), self.bob(revision=4))
        self.assertEqual(len(written), 1)

    async def test_refresh_takes_newer_revision_only(self) -> None:
        self.server.idserver.receive(self.bob(revision=3))
        await self.cache.fetch(self.url("bob"))
        self.server.idserver.receive(self.bob(revision=4))
        self.assertEqual((await self.cache.fetch(self.url("bob"))).revision, 4)
        self.assertEqual(self.cache.accept(self.url("bob"), self.bob(revision=2)).revision, 4)

    async def test_missing_and_impostors(self) -> None:
        with self.assertRaises(NotFound):
            await self.cache.fetch(self.url("nobody"))
        self.server.idserver.receive(self.bob())
        await self.cache.fetch(self.url("bob"))
        # same name, other key: refused even if a server were to serve it
        with self.assertRaises(IdentityMismatch):
            self.cache.accept(self.url("bob"), self.bob(revision=9, key_name="carol"))
        forged = self.bob(revision=1).replace(b"<revision>1", b"<revision>7")
        with self.assertRaises(IdentityMismatch):
            self.cache.accept(self.url("bob"), forged)
        with self.assertRaises(IdentityMismatch):
            self.cache.accept(self.url("carol"), self.bob())
        self.assertEqual(self.cache.get(self.url("bob")).revision, 0)  # type: ignore[union-attr]
