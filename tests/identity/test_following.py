"""A peer's identity cache follows a rotation by key (the official rotation's identities and keys): an IDURL
that rotated away resolves to the newest revision, a dead first server is skipped for the other sources, and
a forged "rotation" (another key, a lower revision, a new name) moves nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.crypto import keys
from bitdust_node.errors import NotFound
from bitdust_node.identity.cache import IdentityCache, IdentityMismatch
from bitdust_node.identity.signing import sign_identity
from bitdust_node.net.http import Reply, Unreachable
from bitdust_node.wire import identity_xml
from tests.identity.vectors import VECTORS

ROTATION = VECTORS / "rotation"
OLD = "http://127.0.0.1:8084/alice.xml"
NEW = "http://127.0.0.2:8085/alice.xml"
SPARE = "http://127.0.0.3:8086/alice.xml"


def captured(name: str) -> bytes:
    return (ROTATION / "identities" / name).read_bytes()


def key(name: str) -> Any:
    return keys.read_private_key(ROTATION / "keys" / f"{name}.THROWAWAY_TEST_KEY.pem")


REV2 = captured("alice.rev2.served_by_A.xml")  # sources A, S2
REV3 = captured("alice.rev3.served_by_S2.xml")  # sources S2, S3: the rotation


def signed(identity: identity_xml.Identity, by: str) -> bytes:
    return identity_xml.serialize(sign_identity(identity, key(by)))


@attrs.define
class FakeHttp:
    """Identity servers by URL: a URL missing here is a dead server."""

    served: dict[str, bytes] = attrs.field(factory=dict)
    asked: list[str] = attrs.field(factory=list)

    async def get(self, url: str) -> Reply:
        self.asked.append(url)
        if url not in self.served:
            raise Unreachable(f"GET {url}: connection refused")
        return Reply(200, self.served[url])


class FollowingTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.root = Path(self.mktemp())
        self.http = FakeHttp()
        self.cache = IdentityCache(self.root, self.http)  # type: ignore[arg-type]
        self.cache.load()
        self.cache.accept(OLD, REV2)

    def fetch(self, idurl: str) -> Any:
        return defer.ensureDeferred(self.cache.fetch(idurl))

    def test_a_pushed_rotation_is_followed_from_the_old_idurl(self) -> None:
        rev3 = identity_xml.parse(REV3)
        self.cache.check(NEW, rev3)  # as the gateway checks an Identity packet's identity
        self.assertEqual(self.cache.keep(NEW, rev3, REV3), rev3)
        for idurl in (OLD, NEW, SPARE):
            self.assertEqual(self.cache.get(idurl), rev3)
        self.assertEqual(self.cache.newest_idurl(OLD), NEW)
        self.assertEqual(self.cache.aliases(OLD), [NEW, SPARE, OLD])
        self.assertTrue(self.cache.same_user(OLD, SPARE))
        self.assertFalse(self.cache.same_user(OLD, "http://127.0.0.2:8085/bob.xml"))
        self.assertEqual([i.revision for i in self.cache.items()], [3])
        # as official bob does, both copies stay on disk, and a restart follows the move again
        again = IdentityCache(self.root, self.http)  # type: ignore[arg-type]
        again.load()
        self.assertEqual(again.get(OLD), rev3)
        self.assertEqual(again.newest_idurl(OLD), NEW)

    def test_a_dead_first_server_is_skipped_for_the_other_sources(self) -> None:
        # carol's path in the capture: the old IDURL refuses, S2 (the next source she knows) serves rev 3
        self.http.served[NEW] = REV3
        rev3 = self.successResultOf(self.fetch(OLD))
        self.assertEqual((rev3.revision, rev3.sources[0]), (3, NEW))
        self.assertEqual(self.http.asked, [OLD, NEW])
        self.assertEqual(self.cache.get(OLD), rev3)
        # nothing answers at all: NotFound, and what was known stays known
        self.http.served.clear()
        self.failureResultOf(self.fetch(OLD), NotFound)
        self.assertEqual(self.cache.get(OLD), rev3)

    def test_the_old_server_back_with_an_old_copy_moves_nothing(self) -> None:
        self.cache.accept(NEW, REV3)
        self.http.served[OLD] = REV2
        self.assertEqual(self.successResultOf(self.fetch(OLD)).revision, 3)
        self.assertEqual(self.cache.newest_idurl(OLD), NEW)

    def test_a_rotation_signed_by_another_key_is_refused(self) -> None:
        rev3 = identity_xml.parse(REV3)
        forged = signed(attrs.evolve(rev3, revision=9), "carol")
        with self.assertRaises(IdentityMismatch):
            self.cache.accept(NEW, forged)  # S2 was alice's (rev 2 lists it)
        # a "rotation" that claims alice's old IDURL among new sources of its own
        grab = attrs.evolve(rev3, sources=("http://127.0.0.9:8089/alice.xml", OLD), revision=9)
        with self.assertRaises(IdentityMismatch):
            self.cache.accept("http://127.0.0.9:8089/alice.xml", signed(grab, "carol"))
        self.assertEqual(self.cache.get(OLD).revision, 2)  # type: ignore[union-attr]
        self.assertIsNone(self.cache.get("http://127.0.0.9:8089/alice.xml"))
        # a new user on servers alice never used is another user, not alice moved
        stranger = signed(attrs.evolve(rev3, sources=(SPARE,), revision=9), "carol")
        self.cache.accept(SPARE, stranger)
        self.assertFalse(self.cache.same_user(OLD, SPARE))
        self.assertEqual(self.cache.newest_idurl(OLD), OLD)

    def test_a_lower_revision_moves_nothing(self) -> None:
        self.cache.accept(NEW, REV3)
        rev3 = identity_xml.parse(REV3)
        back = attrs.evolve(rev3, sources=(SPARE,), revision=1)  # alice's key, but older than what is known
        self.assertEqual(self.cache.accept(SPARE, signed(back, "alice")), rev3)
        self.assertEqual(self.cache.get(SPARE), rev3)
        self.assertEqual(self.cache.newest_idurl(OLD), NEW)

    def test_a_new_name_for_the_same_key_is_refused(self) -> None:
        rev3 = identity_xml.parse(REV3)
        renamed = attrs.evolve(rev3, sources=("http://127.0.0.2:8085/alicia.xml",), revision=4)
        with self.assertRaises(IdentityMismatch):
            self.cache.accept("http://127.0.0.2:8085/alicia.xml", signed(renamed, "alice"))
        self.assertEqual(self.cache.get(OLD).revision, 2)  # type: ignore[union-attr]
