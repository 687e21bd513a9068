"""What a hostile sender can make the messenger keep: an id or key id longer than any honest one is failed with its
reason and nothing is kept or shown; the honest ones (as official nodes send them) are kept; a consumer that does
not poll holds the newest messages up to its bound in bytes, not a thousand of the largest."""

from __future__ import annotations

from pathlib import Path

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.identity.cache import IdentityCache
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.identity.my_identity import MyIdentity
from bitdust_node.messages import message as sealed
from bitdust_node.messages.history import MessageHistory
from bitdust_node.messages.messenger import MAX_QUEUED_BYTES_PER_CONSUMER, Messenger
from bitdust_node.net.http import CappedHttp
from bitdust_node.transport.hookups import Hookups
from bitdust_node.transport.interfaces import Inbound
from bitdust_node.wire import packet as wire
from tests.identity.vectors import identity, private_key
from tests.support.gateway_replies import Replies

# as the captured official bob wrote to alice (vectors/messages/01_p2p_bob_to_alice.json)
OFFICIAL_ID = "private_34179615499590"
BOB_KEY_ID = "master$bob@127.0.0.1_8084"


class MessengerBoundTests(SynchronousTestCase):
    def setUp(self) -> None:
        home = Path(self.mktemp())
        self.clock = Clock()
        self.replies = Replies()
        self.alice = MyIdentity(identity("alice"), private_key("alice"))
        holder = MyIdentityHolder(home, self.alice)
        cache = IdentityCache(home / "cache", CappedHttp(self.clock))
        hookups = Hookups(self.replies, holder, cache, self.clock, lambda name: "ON")  # type: ignore[arg-type]
        self.history = MessageHistory(home / "history.db")
        self.addCleanup(self.history.close)
        self.messenger = Messenger(self.replies, hookups, holder, cache, self.history,  # type: ignore[arg-type]
                                   self.clock)

    def receive(self, packet_id: str, sender_key_id: str = BOB_KEY_ID, text: str = "hi") -> tuple[str, bytes]:
        bob = identity("bob")
        payload = sealed.seal({"message": text}, self.alice.key_id, sender_key_id,
                              self.alice.key.public_key())
        packet = wire.Packet("Message", bob.sources[0], bob.sources[0], packet_id, "d", payload,
                             self.alice.idurl, BOB_KEY_ID, "1")
        self.replies.sent.clear()
        self.messenger.message_received(Inbound(packet, bob, True, wire.serialize(packet)))
        self.assertEqual(len(self.replies.sent), 1)
        return self.replies.sent[0]

    def assert_nothing_kept(self) -> None:
        self.assertEqual(self.history.list(), [])
        self.assertEqual(self.history.held_bytes(), 0)
        self.assertEqual(self.messenger.counters["received"], 0)

    def test_an_official_message_is_kept(self) -> None:
        self.assertEqual(self.receive(OFFICIAL_ID), ("Ack", b"unread"))
        [kept] = self.history.list()
        self.assertEqual((kept.message_id, kept.sender), (OFFICIAL_ID, BOB_KEY_ID))

    def test_ids_and_key_ids_at_the_caps_are_kept(self) -> None:
        longest_id = sealed.PACKET_ID_PREFIX + "1" * (sealed.MAX_MESSAGE_ID_CHARS - len(sealed.PACKET_ID_PREFIX))
        longest_key_id = "master$" + "b" * (sealed.MAX_KEY_ID_CHARS - len("master$"))
        self.assertEqual(self.receive(longest_id, longest_key_id), ("Ack", b"unread"))
        self.assertEqual(self.messenger.counters["received"], 1)

    def test_a_message_id_over_the_cap_is_failed_and_nothing_kept(self) -> None:
        command, reason = self.receive(OFFICIAL_ID + "0" * 1_000_000)
        self.assertEqual(command, "Fail")
        self.assertEqual(reason, b"message id of 1000022 characters is over the cap of 256")
        self.assertEqual(self.messenger.counters["refused_too_long"], 1)
        self.assert_nothing_kept()

    def test_a_sender_key_id_over_the_cap_is_failed_and_nothing_kept(self) -> None:
        command, reason = self.receive(OFFICIAL_ID, "master$" + "b" * 150_000)
        self.assertEqual(command, "Fail")
        self.assertEqual(reason, b"sender key id of 150007 characters is over the cap of 512")
        self.assertEqual(self.messenger.counters["refused_too_long"], 1)
        self.assert_nothing_kept()

    def test_a_consumer_queue_is_bounded_in_bytes_and_keeps_the_newest(self) -> None:
        first_poll = defer.ensureDeferred(self.messenger.receive("api", 1.0))
        self.clock.advance(1.0)
        self.assertEqual(self.successResultOf(first_poll), [])
        # 80 messages of 150 KB while the consumer is away (within its linger): 12 MB, far fewer than 1,000 messages
        for n in range(80):
            self.assertEqual(self.receive(f"{OFFICIAL_ID}{n:02}", text=f"{n:02}" + "x" * 150_000), ("Ack", b""))
        consumer = self.messenger.consumers["api"]
        self.assertLessEqual(consumer.queued_bytes, MAX_QUEUED_BYTES_PER_CONSUMER)
        self.assertGreater(consumer.queued_bytes, MAX_QUEUED_BYTES_PER_CONSUMER - 200_000)
        got = self.successResultOf(defer.ensureDeferred(self.messenger.receive("api", 1.0)))
        self.assertEqual(len(got) + self.messenger.counters["consumer_queue_dropped"], 80)
        self.assertEqual(got[-1]["message_id"], f"{OFFICIAL_ID}79")
        self.assertEqual(got[-1]["data"]["message"][:2], "79")
        self.assertEqual(consumer.queued_bytes, 0)
