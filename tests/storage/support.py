"""Our supplier carol (the storage capture's identity and throwaway key) on an in-memory connection, and the
capture's other nodes as signers of packets for it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import TestCase

from bitdust_node.crypto import keys
from bitdust_node.identity.cache import IdentityCache
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.identity.my_identity import MyIdentity
from bitdust_node.net.http import CappedHttp
from bitdust_node.storage.customers import Customers
from bitdust_node.storage.store import PieceStore
from bitdust_node.storage.supplier import SERVICE_NAME, Supplier
from bitdust_node.transport.connection import TcpConnection
from bitdust_node.transport.gateway import Gateway, GatewayLimits
from bitdust_node.transport.hookups import Hookups
from bitdust_node.transport.tcp import TcpNode
from bitdust_node.wire import identity_xml, tcp_frames
from bitdust_node.wire import packet as wire
from tests.identity.vectors import VECTORS

STORAGE = VECTORS / "storage"
DAVE = "http://127.0.0.1:8084/dave.xml"


def me(name: str) -> MyIdentity:
    return MyIdentity(identity_xml.parse((STORAGE / "identity" / f"{name}.xml").read_bytes()),
                      keys.read_private_key(STORAGE / "keys" / f"{name}.THROWAWAY_TEST_KEY.pem"))


class Side:
    """One node of the capture's network (its identity and key) with a connection to our supplier carol."""

    def __init__(
        self, test: TestCase, home: Path, donated: int = 1 << 30, customers_root: Path | None = None,
        signers: tuple[str, ...] = ("dave", "alice"),
    ) -> None:
        self.reactor = MemoryReactorClock()
        self.reactor.advance(1_796_155_000.0)
        carol = me("carol")
        holder = MyIdentityHolder(home, carol)
        cache = IdentityCache(home / "cache", CappedHttp(self.reactor))
        # a memory reactor has no threads: every packet verified where it arrives
        self.gateway = Gateway(self.reactor, holder, cache, GatewayLimits(thread_verify_from=1 << 62))
        hookups = Hookups(self.gateway, holder, cache, self.reactor, lambda n: "ON" if n == SERVICE_NAME else None)
        self.store = PieceStore(customers_root or home / "customers")
        self.supplier = Supplier(self.gateway, holder, self.store, Customers.load(home / "customers.json"),
                                 lambda: donated, self.reactor, disk_in_thread=False)
        self.supplier.start()
        hookups.accept_requests(SERVICE_NAME, self.supplier)
        tcp = TcpNode(self.reactor, lambda: ("127.0.0.1", 7773), lambda: carol.idurl,
                      lambda connection, data: self.gateway.file_received(data, connection))
        self.gateway.attach(tcp)
        self.connection = tcp.track(TcpConnection(tcp), "127.0.0.1")
        self.wire = StringTransport()
        self.connection.makeConnection(self.wire)
        self.connection.dataReceived(tcp_frames.encode_frame(tcp_frames.HELLO, b"127.0.0.1:7774 " + DAVE.encode()))
        # the customers' gateways only sign packets here
        self.signers = {name: self._signer(test, name) for name in signers}
        for name in signers:
            self.send(name, "Identity", "identity:1", me(name).xml)

    def _signer(self, test: TestCase, name: str) -> Gateway:
        return signer(test, me(name), self.reactor)

    def make(self, name: str, command: str, packet_id: str, payload: bytes = b"", **fields: Any) -> wire.Packet:
        packet = self.signers[name].outbox(command, me("carol").idurl, payload, packet_id=packet_id)
        return attrs.evolve(packet, **fields) if fields else packet

    def send(self, name: str, command: str, packet_id: str, payload: bytes = b"", **fields: Any) -> wire.Packet | None:
        return self.send_packet(self.make(name, command, packet_id, payload, **fields))

    def send_packet(self, packet: wire.Packet) -> wire.Packet | None:
        answers = self.answers_to(packet)
        return answers[-1] if answers else None

    def answers_to(self, packet: wire.Packet) -> list[wire.Packet]:
        """Feed one packet on the connection; the whole files written back (each said `o` to, as a peer does)."""
        self.gateway.file_received(wire.serialize(packet), self.connection)
        return self.written()

    def written(self) -> list[wire.Packet]:
        """The whole files written back since the last look (each said `o` to, as a peer does)."""
        found, taken = [], []
        files = tcp_frames.FileAssembler(max_file_size=1 << 26, max_files=40, max_total=1 << 27)
        for frame in tcp_frames.FrameDecoder().feed(self.wire.value()):
            if frame.command == tcp_frames.DATA:
                chunk = tcp_frames.decode_data(frame.payload)
                whole = files.add(chunk)
                if whole is not None:
                    found.append(wire.parse(whole))
                    taken.append(chunk.file_id)
        self.wire.clear()
        for file_id in taken:
            self.connection.dataReceived(tcp_frames.encode_ok(file_id))
        return found

    def hire(self, name: str, needed: int) -> wire.Packet | None:
        body = wire_json({"name": SERVICE_NAME, "payload": {"customer_id": f"{name}@127.0.0.1_8084",
                                                            "needed_bytes": needed, "ecc_map": "ecc/2x2",
                                                            "position": 0, "family_snapshot": []}})
        return self.send(name, "RequestService", f"hire:{name}:{needed}", body)


def signer(test: TestCase, who: MyIdentity, reactor: Any = None) -> Gateway:
    """A gateway that signs packets as `who` (and sends nothing)."""
    home = Path(test.mktemp())
    reactor = reactor or MemoryReactorClock()
    return Gateway(reactor, MyIdentityHolder(home, who), IdentityCache(home, CappedHttp(reactor)))


class WalkCounting(dict[str, Any]):
    """A table of customers that counts the walks over all of them (what a stranger's packet must not cost)."""

    walks = 0

    def values(self) -> Any:
        self.walks += 1
        return super().values()

    def items(self) -> Any:
        self.walks += 1
        return super().items()

    def keys(self) -> Any:
        self.walks += 1
        return super().keys()

    def __iter__(self) -> Any:
        self.walks += 1
        return super().__iter__()


def wire_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
