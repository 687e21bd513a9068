"""Sending and receiving private messages (section 6): a handshake ping unless the peer answered lately,
the Message packet sent wide and Acked (`unread`, or empty when a consumer took it), duplicates dropped,
everything kept in the history. Consumers (REST long polls) take incoming messages as they arrive."""

from __future__ import annotations

import collections
from typing import Any

import attrs
from twisted.internet import defer
from twisted.logger import Logger

from bitdust_node.crypto import keys
from bitdust_node.identity.cache import IdentityCache
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.messages import message as sealed
from bitdust_node.messages.history import MessageHistory, StoredMessage, stored_bytes
from bitdust_node.net.clock import TimeSource
from bitdust_node.transport.errors import TransportError
from bitdust_node.transport.hookups import Hookups
from bitdust_node.transport.interfaces import Inbound, PacketNetwork, Timeout
from bitdust_node.wire.identity_xml import parse_idurl

log = Logger()
# the official sender skips the handshake for a peer that answered this recently
HANDSHAKE_FRESH_FOR = 300.0
ACK_TIMEOUT = 15.0
PING_TIMEOUT = 30.0
MAX_CONSUMERS = 64
MAX_QUEUED_PER_CONSUMER = 1000
# and in bytes, counted as the history counts a kept message; every consumer queues the same newest messages, so all
# the queues together hold no more than this (dozens of the largest messages, thousands of usual ones)
MAX_QUEUED_BYTES_PER_CONSUMER = 8 * 1024 * 1024
# a consumer that stopped polling keeps its queue this long, so no message falls between two polls
CONSUMER_LINGER = 120.0


@attrs.define(eq=False)
class Consumer:
    # the messages not taken yet, each with what it costs
    queue: collections.deque[tuple[dict[str, Any], int]] = attrs.field(factory=collections.deque)
    queued_bytes: int = 0
    waiting: list[defer.Deferred[None]] = attrs.field(factory=list)
    last_poll: float = 0.0

    def push(self, item: dict[str, Any], size: int) -> int:
        """Queue a message, letting the oldest go while over the bounds; how many went."""
        self.queue.append((item, size))
        self.queued_bytes += size
        dropped = 0
        while len(self.queue) > MAX_QUEUED_PER_CONSUMER or self.queued_bytes > MAX_QUEUED_BYTES_PER_CONSUMER:
            _gone, gone_size = self.queue.popleft()
            self.queued_bytes -= gone_size
            dropped += 1
        return dropped

    def take(self) -> list[dict[str, Any]]:
        items = [item for item, _size in self.queue]
        self.queue.clear()
        self.queued_bytes = 0
        return items


def key_id_of(idurl: str) -> str:
    return "master$" + parse_idurl(idurl).global_id


class Messenger:
    def __init__(
        self,
        gateway: PacketNetwork,
        hookups: Hookups,
        me: MyIdentityHolder,
        cache: IdentityCache,
        history: MessageHistory,
        clock: TimeSource,
    ) -> None:
        self.gateway = gateway
        self.hookups = hookups
        self.me = me
        self.cache = cache
        self.history = history
        self.clock = clock
        self.consumers: dict[str, Consumer] = {}
        self.counters: collections.Counter[str] = collections.Counter()
        self._unregister = gateway.register("Message", self.message_received)

    def close(self) -> None:
        self._unregister()
        for consumer in self.consumers.values():
            for waiter in consumer.waiting:
                if not waiter.called:
                    waiter.callback(None)

    # -- out

    async def send(self, idurl: str, data: dict[str, Any], ack_timeout: float = ACK_TIMEOUT) -> bool:
        """Send `data` to the user; True when a consumer on the other side read it (Ack not `unread`)."""
        me = self.me.require()
        message_id = sealed.PACKET_ID_PREFIX + self.gateway.new_packet_id()
        body = {**data, "msg_type": "private_message", "action": "read"}
        # a user who moved is written to where it is now (its old IDURL would do too: it still answers to it)
        idurl = self.cache.newest_idurl(idurl)
        heard = self.hookups.last_heard.get(idurl)
        fresh = heard is not None and self.clock.seconds() - heard <= HANDSHAKE_FRESH_FOR
        if not fresh:
            await self.hookups.ping(idurl, timeout=PING_TIMEOUT, channel="send_message")
            # the handshake fetched its identity: it may have moved meanwhile
            idurl = self.cache.newest_idurl(idurl)
        peer = await self.cache.known(idurl)
        recipient = keys.public_key_from_openssh(peer.publickey)
        payload = sealed.seal(body, key_id_of(idurl), me.key_id, recipient)
        packet = self.gateway.outbox("Message", idurl, payload, packet_id=message_id)
        try:
            ack = await self.gateway.request(packet, peer, wide=True, timeout=ack_timeout)
        except (TransportError, Timeout):
            if not fresh:
                raise
            # the peer may have moved (a new router, a new address): its identity again, then once more
            self.counters["resent_after_handshake"] += 1
            await self.hookups.ping(idurl, timeout=PING_TIMEOUT, channel="send_message")
            peer = self.cache.get(idurl) or peer
            ack = await self.gateway.request(packet, peer, wide=True, timeout=ack_timeout)
        self.history.add(StoredMessage(message_id, "outgoing", me.key_id, key_id_of(idurl), idurl,
                                       self.clock.seconds(), body))
        self.counters["sent"] += 1
        return ack.command == "Ack" and ack.payload != b"unread"

    # -- in

    def message_received(self, inbound: Inbound) -> defer.Deferred[None] | None:
        packet = inbound.packet
        if not inbound.for_me:
            return None
        me = self.me.require()
        if not packet.packet_id.startswith(sealed.PACKET_ID_PREFIX):
            self.counters["refused_packet_id"] += 1
            return self.gateway.reply(inbound, "Ack", b"unread")
        try:
            sealed.check_message_id(packet.packet_id)
        except sealed.MessageTooLong as err:
            return self._refuse(inbound, err)
        if self.history.has(packet.packet_id, "incoming"):
            # a replay, or a sender that lost our Ack: answered again, never stored or shown twice
            self.counters["duplicates"] += 1
            return self.gateway.reply(inbound, "Ack", b"unread")
        try:
            box = sealed.parse(packet.payload)
            # my key by any IDURL of mine: senders who knew me before a move write to the old one
            if not self.me.is_my_key_id(box.recipient_key_id):
                raise sealed.MessageError(f"message for key {box.recipient_key_id[:80]!r}, not mine")
            data = sealed.open_sealed(box, me.key)
        except sealed.MessageError as err:
            return self._refuse(inbound, err)
        stored = StoredMessage(packet.packet_id, "incoming", box.sender_key_id, box.recipient_key_id,
                               packet.creator_id, self.clock.seconds(), data)
        self.history.add(stored)
        self.hookups.heard_from(packet.creator_id)
        self.counters["received"] += 1
        consumed = self._deliver(stored)
        return self.gateway.reply(inbound, "Ack", b"" if consumed else b"unread")

    def _refuse(self, inbound: Inbound, err: sealed.MessageError) -> defer.Deferred[None]:
        """Fail, with the reason, a message nothing keeps or shows."""
        self.counters["refused_too_long" if isinstance(err, sealed.MessageTooLong) else "refused_unreadable"] += 1
        packet = inbound.packet
        log.info("message {id} from {who} refused: {why}", id=packet.packet_id[:80], who=packet.creator_id,
                 why=str(err))
        return self.gateway.reply(inbound, "Fail", str(err).encode()[:200])

    def conversation(self, peer: str | None = None, offset: int = 0, limit: int = 100) -> list[StoredMessage]:
        """The history (with one user, by any of its IDURLs), each correspondent named by where it is now and
        me by my key id now: a user who moved is one correspondent, not two."""
        found = self.history.list(self.cache.aliases(peer) if peer else None, offset, limit)
        return [self._as_now(m) for m in found]

    def _as_now(self, message: StoredMessage) -> StoredMessage:
        me = self.me.current
        mine = me.key_id if me is not None else ""
        theirs = key_id_of(self.cache.newest_idurl(message.peer))
        if message.direction == "incoming":
            sender, recipient = theirs, mine if self.me.is_my_key_id(message.recipient) else message.recipient
        else:
            sender, recipient = mine if self.me.is_my_key_id(message.sender) else message.sender, theirs
        return attrs.evolve(message, sender=sender, recipient=recipient, peer=self.cache.newest_idurl(message.peer))

    def _deliver(self, message: StoredMessage) -> bool:
        now = self.clock.seconds()
        taken = False
        item, size = message.describe(), 0
        for name, consumer in list(self.consumers.items()):
            if not consumer.waiting and now - consumer.last_poll > CONSUMER_LINGER:
                del self.consumers[name]
                continue
            size = size or stored_bytes(message)
            if dropped := consumer.push(item, size):
                self.counters["consumer_queue_dropped"] += dropped
            taken = True
            waiting, consumer.waiting = consumer.waiting, []
            for waiter in waiting:
                if not waiter.called:
                    waiter.callback(None)
        return taken

    async def receive(self, consumer_name: str, timeout: float) -> list[dict[str, Any]]:
        """Incoming messages for this consumer: those queued, else the next ones within `timeout`."""
        consumer = self.consumers.get(consumer_name)
        if consumer is None:
            if len(self.consumers) >= MAX_CONSUMERS:
                oldest = min(self.consumers, key=lambda n: self.consumers[n].last_poll)
                del self.consumers[oldest]
            consumer = self.consumers[consumer_name] = Consumer()
        consumer.last_poll = self.clock.seconds()
        if not consumer.queue:
            waiter: defer.Deferred[None] = defer.Deferred()
            consumer.waiting.append(waiter)
            waiter.addTimeout(timeout, self.clock, onTimeoutCancel=lambda *_: None)
            await waiter
            consumer.last_poll = self.clock.seconds()
        return consumer.take()
