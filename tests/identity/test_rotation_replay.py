"""The official rotation (vectors/rotation, PyPI 0.1.24.265) replayed through our code, with its identities and
throwaway keys: our rotator makes the official alice's revision 3 byte for byte from her revision 2; what an
official peer checks before it follows a move (written from its code) accepts our rotated identities; our bob
takes the official alice's move and Acks it as official bob did; our alice reads the official bob's and
carol's messages to her old IDURL and Acks them as official alice did."""

from __future__ import annotations

import calendar
import json
import time
from pathlib import Path
from typing import Any

import attrs
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.crypto import keys
from bitdust_node.fsm import Registry
from bitdust_node.identity.cache import IdentityCache
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.identity.known_servers import parse_known_servers
from bitdust_node.identity.my_identity import MyIdentity
from bitdust_node.identity.rotation import CandidateAnswer, RotationSettings, Rotator
from bitdust_node.identity.signing import sign_identity, verify_identity
from bitdust_node.messages.history import MessageHistory
from bitdust_node.messages.messenger import Messenger
from bitdust_node.net.http import CappedHttp
from bitdust_node.transport.gateway import Gateway, GatewayLimits
from bitdust_node.transport.hookups import Hookups
from bitdust_node.wire import identity_xml
from bitdust_node.wire import packet as wire
from bitdust_node.wire.identity_xml import Identity, parse_idurl
from bitdust_node.wire.tcp_frames import joined
from tests.identity.test_rotation import FakeServers
from tests.identity.vectors import VECTORS

ROTATION = VECTORS / "rotation"
A, S2, S3 = "127.0.0.1:8084", "127.0.0.2:8085", "127.0.0.3:8086"
OLD = f"http://{A}/alice.xml"
NEW = f"http://{S2}/alice.xml"


def identity_file(name: str) -> bytes:
    return (ROTATION / "identities" / name).read_bytes()


def view(name: str) -> bytes:
    return (ROTATION / "views" / name).read_bytes()


def me(name: str, identity: str) -> MyIdentity:
    return MyIdentity(identity_xml.parse(identity_file(identity)),
                      keys.read_private_key(ROTATION / "keys" / f"{name}.THROWAWAY_TEST_KEY.pem"))


def captured(number: str) -> dict[str, Any]:
    found = next((ROTATION / "p2p" / "packets").glob(f"{number}_*.json"))
    return json.loads(found.read_text())


def signed_at(packet: dict[str, Any]) -> float:
    """The moment a captured packet was signed (its Date, UTC)."""
    return float(calendar.timegm(time.strptime(packet["decoded"]["Date"], "%Y/%m/%d %I:%M:%S %p")))


def rotate(alice: MyIdentity, known: str, min_servers: int, max_servers: int, home: Path) -> MyIdentity:
    """Our rotator run on `alice` as the capture's network was at A's death: A refuses, S2 serves her current
    revision, S3 (when known) holds nothing of her name."""
    clock = Clock()
    holder = MyIdentityHolder(home, alice)
    servers = FakeServers(serving={f"http://{S2}/alice.xml": alice.identity.revision},
                          answers={f"http://{S3}/alice.xml": CandidateAnswer(f"http://{S3}/alice.xml", True)},
                          taking={f"http://{S2}/alice.xml", f"http://{S3}/alice.xml"})
    settings = RotationSettings(True, 15.0, min_servers, max_servers, tuple(parse_known_servers(known)))
    rotator = Rotator(holder, servers, servers, clock, lambda: settings, Registry().register("id_rotator", ""))
    rotator.start()
    clock.pump([15.0, 15.0])
    rotator.stop()
    return holder.require()


# -- what an official peer checks before it follows a move (bitdust/userid/identity.py isCorrect, Valid;
# contacts/identitydb.py update; userid/id_url.py identity_cached, get_latest_revision, ID_URL_FIELD;
# transport/gateway.py on_identity_received)


def official_is_correct(identity: Identity) -> bool:
    sources = identity.sources
    if not identity.contacts or not sources or not identity.publickey or not identity.signature:
        return False
    if len(set(sources)) != len(sources) or not 1 <= len(sources) <= 6:
        return False
    names = set()
    for source in sources:
        filename = source.rsplit("/", 1)[1]
        name, _, ext = filename.partition(".")
        if ext != "xml" or not 3 <= len(name) <= 20 or set(name) - set("abcdefghijklmnopqrstuvwxyz0123456789-_"):
            return False
        names.add(name)
    return len(names) == 1


@attrs.define
class OfficialPeer:
    """An official node's state for one user: its identity cache files by IDURL and its identity history
    (keyed by public key), with the index `id_url` keeps over them."""

    cache_files: dict[str, Identity] = attrs.field(factory=dict)
    history: list[Identity] = attrs.field(factory=list)
    known_idurls: dict[str, str] = attrs.field(factory=dict)
    merged: dict[str, dict[int, str]] = attrs.field(factory=dict)
    events: list[str] = attrs.field(factory=list)

    def cached(self, identity: Identity) -> None:
        """`id_url.identity_cached`: history by key, every source mapped to the key, revision -> IDURL."""
        latest = max(self.history, key=lambda i: i.revision, default=None)
        if latest is not None:
            assert latest.publickey == identity.publickey
            if identity.revision not in {i.revision for i in self.history} and latest.sources != identity.sources:
                self.history.append(identity)
                if identity.revision > latest.revision:
                    self.events.append("identity-rotated")
                    if latest.sources[0] != identity.sources[0]:
                        self.events.append("identity-url-changed")
        else:
            self.history.append(identity)
        for source in reversed(identity.sources):
            self.known_idurls[source] = identity.publickey
            self.merged.setdefault(identity.publickey, {})[identity.revision] = source

    def latest_idurl(self, idurl: str) -> tuple[str, int]:
        """`id_url.get_latest_revision`: what an IDURL resolves to."""
        revisions = self.merged[self.known_idurls[idurl]]
        newest = max(revisions)
        return revisions[newest], newest

    def identity_received(self, identity: Identity, name: str) -> bool:
        """`gateway.on_identity_received` -> `identitydb.update` + `identity_cached`: True when followed and Acked."""
        if not official_is_correct(identity) or not verify_identity(identity):
            return False
        first = identity.sources[0]
        if first in self.cache_files and self.cache_files[first].publickey != identity.publickey:
            return False
        if identity.name != name:  # ID_URL_FIELD refuses a user name that changes
            return False
        self.cache_files[first] = identity
        self.cached(identity)
        latest = max(self.history, key=lambda i: i.revision)
        return latest.revision <= identity.revision  # an out-dated copy gets no Ack


def official_bob_before() -> OfficialPeer:
    """Official bob as the capture saw him before A died: alice rev 2 cached under her old IDURL and in history."""
    peer = OfficialPeer()
    known = identity_xml.parse(view("bob_before/identitycache_http_127.0.0.1_8084_alice.xml"))
    peer.cache_files[OLD] = known
    peer.cached(identity_xml.parse(view("bob_before/identityhistory_alice@nil_czrd_0")))
    return peer


class OfficialRotationTests(SynchronousTestCase):
    def test_our_rotator_signs_the_official_revision_3_byte_for_byte(self) -> None:
        alice = me("alice", "alice.rev2.local.xml")
        moved = rotate(alice, f"{A}:6661 {S2}:6662 {S3}:6663", 2, 2, Path(self.mktemp()))
        self.assertEqual(moved.xml, identity_file("alice.rev3.local.xml"))
        # official bob's history kept the same bytes as his second record of alice
        self.assertEqual(moved.xml, view("bob_after_rotation/identityhistory_alice@nil_czrd_1"))

    def test_an_official_peer_that_knew_alice_by_her_old_idurl_follows_our_rotations(self) -> None:
        alice = me("alice", "alice.rev2.local.xml")
        # with the capture's three servers, and with two (official nodes cannot rotate on two: ours can)
        for known, min_servers in ((f"{A} {S2} {S3}", 2), (f"{A} {S2}", 2), (f"{A} {S2} {S3}", 1)):
            moved = rotate(alice, known, min_servers, 5, Path(self.mktemp())).identity
            peer = official_bob_before()
            self.assertTrue(peer.identity_received(moved, "alice"), known)
            self.assertEqual(peer.events, ["identity-rotated", "identity-url-changed"])
            # her old IDURL resolves to the new one at the new revision; the old one stays known
            self.assertEqual(peer.latest_idurl(OLD), (NEW, 3))
            self.assertEqual(peer.latest_idurl(NEW), (NEW, 3))
            self.assertEqual(moved.publickey, alice.identity.publickey)
            self.assertEqual(moved.sources[0], NEW)
        # the rules say no to what they should: a lower revision is not Acked, another key is refused
        peer = official_bob_before()
        moved = rotate(alice, f"{A} {S2}", 2, 5, Path(self.mktemp())).identity
        self.assertTrue(peer.identity_received(moved, "alice"))
        self.assertFalse(peer.identity_received(identity_xml.parse(view("bob_before/identityhistory_alice@nil_czrd_0")),
                                                "alice"))
        carol = me("carol", "carol.served_by_S2.xml")
        forged = sign_identity(attrs.evolve(moved, revision=9), carol.key)  # carol's key on alice's new sources
        self.assertFalse(peer.identity_received(forged, "alice"))
        self.assertFalse(peer.identity_received(attrs.evolve(forged, publickey=moved.publickey), "alice"))


@attrs.define
class Wire:
    """A p2p transport that keeps what it is given."""

    proto: str = "tcp"
    sent: list[tuple[str, bytes]] = attrs.field(factory=list)

    def send_to(self, contact: str, data: Any) -> defer.Deferred[None]:
        self.sent.append((contact, joined(data)))
        return defer.succeed(None)


class OurNodeTests(SynchronousTestCase):
    def node(self, who: MyIdentity, knows: dict[str, bytes], former: tuple[str, ...] = ()) -> tuple[Gateway, Wire]:
        home = Path(self.mktemp())
        self.clock = Clock()
        holder = MyIdentityHolder(home, who, former)
        self.holder = holder
        cache = IdentityCache(home / "cache", CappedHttp(self.clock))
        cache.load()
        for idurl, xml in knows.items():
            cache.accept(idurl, xml)
        gateway = Gateway(self.clock, holder, cache, GatewayLimits(thread_verify_from=1 << 62))
        self.hookups = Hookups(gateway, holder, cache, self.clock, lambda name: "ON")
        transport = Wire()
        gateway.attach(transport)
        return gateway, transport

    def feed(self, gateway: Gateway, number: str) -> None:
        self.clock.advance(max(0.0, signed_at(captured(number)) - self.clock.seconds()))
        self.successResultOf(gateway.file_received(captured(number)["raw_utf8"].encode()))

    def test_our_bob_follows_the_official_alices_move_and_acks_it_as_official_bob_did(self) -> None:
        bob = me("bob", "bob.local.final.xml")
        gateway, out = self.node(bob, {OLD: view("bob_before/identitycache_http_127.0.0.1_8084_alice.xml")})
        cache = gateway.cache
        self.assertEqual(cache.get(OLD).revision, 2)  # type: ignore[union-attr]
        # official alice's first Identity after her move: new CreatorID, but KeyID `master$alice@<old host>`
        ack = captured("020")
        self.clock.advance(signed_at(ack) - self.clock.seconds())
        self.successResultOf(gateway.file_received(captured("019")["raw_utf8"].encode()))
        self.assertEqual(cache.get(OLD).sources, (NEW, f"http://{S3}/alice.xml"))  # type: ignore[union-attr]
        self.assertEqual(cache.newest_idurl(OLD), NEW)
        self.assertEqual(out.sent, [("tcp://127.0.0.1:7774", ack["raw_utf8"].encode())])
        # her second one (KeyID fixed after her gateway restart) is the same revision: Acked again
        self.feed(gateway, "021")
        self.assertEqual(wire.parse(out.sent[-1][1]).command, "Ack")
        self.assertEqual(gateway.dropped, {})

    def test_our_alice_reads_messages_to_her_old_idurl_and_acks_as_official_alice_did(self) -> None:
        alice = me("alice", "alice.rev3.local.xml")
        peers = {"http://127.0.0.2:8085/bob.xml": identity_file("bob.served_by_S2.xml"),
                 "http://127.0.0.2:8085/carol.xml": identity_file("carol.served_by_S2.xml")}
        gateway, out = self.node(alice, peers, former=(OLD,))
        history = MessageHistory(Path(self.mktemp()) / "history.db")
        self.addCleanup(history.close)
        messenger = Messenger(gateway, self.hookups, self.holder, gateway.cache, history, self.clock)
        for message, answer, text in (("027", "028", "bob to alice OLD IDURL after the rotation"),
                                      ("029", "030", None)):
            self.clock.advance(signed_at(captured(answer)) - self.clock.seconds())
            waiting = defer.ensureDeferred(messenger.receive("api", 60.0))  # a consumer reads it: the Ack says so
            self.assertEqual(captured(message)["decoded"]["RemoteID"], OLD)
            self.feed(gateway, message)
            got = self.successResultOf(waiting)
            self.assertEqual(got[0]["recipient"], "master$alice@127.0.0.1_8084")
            if text is not None:
                self.assertEqual(got[0]["data"]["message"], text)
            self.assertEqual(out.sent[-1][1], captured(answer)["raw_utf8"].encode())
        self.assertEqual(messenger.counters["received"], 2)
        # her own history shows them to her, by her key id now
        self.assertEqual({m.recipient for m in messenger.conversation()}, {alice.key_id})
        self.assertEqual(parse_idurl(alice.idurl).global_id, "alice@127.0.0.2_8085")
