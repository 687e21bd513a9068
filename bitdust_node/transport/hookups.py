"""First contact and service requests between peers (PROTOCOL-P2P.md 3.1 and 3.3).

An Identity packet addressed to me is answered with an empty Ack, same PacketID, sent wide; when I
already hold a newer revision of the sender's identity I send that back instead. A ping is an
Identity packet `api_user_ping:<n>:1:<uid>` waiting for that Ack. RequestService and CancelService
go to the service they name, which answers Ack (`accepted`, `deny:...`) or Fail; the texts of the
failures that are not the service's own are the official ones.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable
from typing import Any, Protocol

import attrs
from twisted.internet import defer
from twisted.logger import Logger

from bitdust_node.identity.cache import IdentityCache, IdentityMismatch
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.net.clock import TimeSource
from bitdust_node.transport.interfaces import DEFAULT_TIMEOUT, Inbound, PacketNetwork
from bitdust_node.wire import identity_xml, peer_json
from bitdust_node.wire.identity_xml import Identity

log = Logger()
MAX_SERVICE_REQUEST = 10_240
# a request and its payload, and within that a family snapshot or a list of suppliers: a few levels at most
MAX_REQUEST_DEPTH = 16
# the peers whose last answer is remembered: far more than a node talks to (suppliers, customers, correspondents),
# and a few MB at most when one key signs identities with new IDURLs forever
MAX_LAST_HEARD = 8192


@attrs.frozen
class ServiceAnswer:
    """What a service says to a remote request: Ack (with its text) or Fail (with the reason)."""

    command: str
    payload: bytes = b""

    @classmethod
    def ack(cls, text: str = "accepted") -> ServiceAnswer:
        return cls("Ack", text.encode("utf-8"))

    @classmethod
    def fail(cls, text: str) -> ServiceAnswer:
        return cls("Fail", text.encode("utf-8"))


class RemoteRequests(Protocol):
    """A service that takes requests from peers (supplier, proxy router, ...)."""

    def request_service(self, inbound: Inbound, payload: dict[str, Any]) -> Any: ...

    def cancel_service(self, inbound: Inbound, payload: dict[str, Any]) -> Any: ...


class LastHeard(collections.OrderedDict[str, float]):
    """When each peer last answered; past `limit` peers the least recently heard are forgotten."""

    limit: int = MAX_LAST_HEARD

    def __setitem__(self, idurl: str, when: float) -> None:
        super().__setitem__(idurl, when)
        self.move_to_end(idurl)
        while len(self) > self.limit:
            self.popitem(last=False)


@attrs.frozen
class PingResult:
    idurl: str
    global_id: str
    round_trip: float
    packet_id: str


class Hookups:
    def __init__(
        self,
        gateway: PacketNetwork,
        me: MyIdentityHolder,
        cache: IdentityCache,
        clock: TimeSource,
        service_state: Callable[[str], str | None],
    ) -> None:
        self.gateway = gateway
        self.me = me
        self.cache = cache
        self.clock = clock
        self.service_state = service_state
        self.remote_services: dict[str, RemoteRequests] = {}
        self._channels: dict[str, itertools.count[int]] = {}
        # when each peer last answered: user/status and the handshake before messages
        self.last_heard = LastHeard()
        # service requests whose handler failed (answered with the official Fail)
        self.failed_requests = 0
        self._unregister = [
            gateway.register("Identity", self.identity_received),
            gateway.register("RequestService", self.request_received),
            gateway.register("CancelService", self.cancel_received),
        ]

    def close(self) -> None:
        for unregister in self._unregister:
            unregister()

    # -- first contact

    def identity_received(self, inbound: Inbound) -> defer.Deferred[None] | None:
        packet = inbound.packet
        self.heard_from(packet.creator_id)
        if inbound.carried is not inbound.creator:
            # someone's identity pushed to me (a newer revision, say): keep it if it checks out
            if inbound.carried is not None:
                self._keep_pushed(inbound.carried, packet.payload)
            return None
        if not inbound.for_me:
            return None  # processed (cached by the gateway), but not Acked, as official nodes do
        cached = self.cache.get(packet.creator_id)
        if cached is not None and cached.revision > inbound.creator.revision:
            packet_id = "identity:" + self.gateway.new_packet_id()
            xml = identity_xml.serialize(cached)
            newer = self.gateway.outbox("Identity", packet.creator_id, xml, packet_id=packet_id)
            return self.gateway.send(newer, cached, wide=True).addErrback(lambda _f: None)
        return self.gateway.reply(inbound, "Ack", b"", wide=True)

    def _keep_pushed(self, pushed: Identity, xml: bytes) -> None:
        try:
            self.cache.check(pushed.sources[0], pushed)
        except IdentityMismatch as err:
            log.info("pushed identity not kept: {why}", why=str(err))
            return
        self.cache.keep(pushed.sources[0], pushed, xml)

    def heard_from(self, idurl: str) -> None:
        """The peer answered now (user/status and the handshake before messages read it)."""
        self.last_heard[idurl] = self.clock.seconds()

    def channel_id(self, channel: str) -> str:
        counter = self._channels.setdefault(channel, itertools.count(1))
        return f"{channel}:{next(counter)}:1:{self.gateway.new_packet_id()}"

    async def ping(self, idurl: str, timeout: float = DEFAULT_TIMEOUT, channel: str = "api_user_ping") -> PingResult:
        """Fetch the peer's identity, send it mine wide, wait for its Ack; the round trip in seconds."""
        peer = await self.cache.fetch(idurl)
        me = self.me.require()
        packet = self.gateway.outbox("Identity", idurl, me.xml, packet_id=self.channel_id(channel))
        started = self.clock.seconds()
        await self.gateway.request(packet, peer, wide=True, timeout=timeout)
        self.heard_from(idurl)
        return PingResult(idurl, peer.global_id, self.clock.seconds() - started, packet.packet_id)

    # -- service requests

    def accept_requests(self, service_name: str, handler: RemoteRequests) -> Callable[[], None]:
        self.remote_services[service_name] = handler

        def stop_accepting() -> None:
            if self.remote_services.get(service_name) is handler:
                del self.remote_services[service_name]

        return stop_accepting

    def request_received(self, inbound: Inbound) -> defer.Deferred[None] | None:
        return self._service_call(inbound, cancel=False)

    def cancel_received(self, inbound: Inbound) -> defer.Deferred[None] | None:
        return self._service_call(inbound, cancel=True)

    def _service_call(self, inbound: Inbound, cancel: bool) -> defer.Deferred[None] | None:
        if not inbound.for_me:
            return None
        request = self._parse_request(inbound, cancel)
        if isinstance(request, ServiceAnswer):
            return self._answer(inbound, request)
        name, payload = request
        handler = self.remote_services[name]
        work = handler.cancel_service if cancel else handler.request_service
        d = defer.maybeDeferred(work, inbound, payload)

        def failed(failure: Any) -> ServiceAnswer:
            # what a peer asked met a bug of the service: one line, the traceback at debug level only
            self.failed_requests += 1
            log.warn("{name} request from {peer} failed: {why}", name=name, peer=inbound.packet.creator_id,
                     why=failure.getErrorMessage())
            log.debug("{name} request failed: {trace}", name=name, trace=failure.getTraceback())
            return ServiceAnswer.fail("request processing failed with exception")

        d.addErrback(failed)
        d.addCallback(lambda answer: self._answer(inbound, answer) if answer is not None else None)
        return d

    def _parse_request(self, inbound: Inbound, cancel: bool = False) -> ServiceAnswer | tuple[str, dict[str, Any]]:
        """The official refusal for a request no service should see, or the service's name and the request's
        payload when it may go on.

        A CancelService without `payload` is taken: official routed users send it so (section 4.3), and an
        official node's refusal of it leaves their route open until the session drops."""
        raw = inbound.packet.payload
        if len(raw) > MAX_SERVICE_REQUEST:
            return ServiceAnswer.fail("too long payload")
        try:
            body = peer_json.loads(raw, MAX_SERVICE_REQUEST, MAX_REQUEST_DEPTH)
        except peer_json.PeerJsonError:
            return ServiceAnswer.fail("json payload invalid")
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            return ServiceAnswer.fail("json payload invalid")
        if "payload" not in body and not cancel:
            return ServiceAnswer.fail("json payload invalid")
        payload = body.get("payload", {})
        if not isinstance(payload, dict):
            return ServiceAnswer.fail("json payload invalid")
        name = body["name"]
        state = self.service_state(name)
        if state is None:
            return ServiceAnswer.fail(f"service {name} not exist")
        if state != "ON":
            return ServiceAnswer.fail(f"service {name} is off")
        if name not in self.remote_services:
            return ServiceAnswer.fail("refused")
        return name, payload

    def _answer(self, inbound: Inbound, answer: ServiceAnswer) -> defer.Deferred[None]:
        return self.gateway.reply(inbound, answer.command, answer.payload)

