"""A whole storage grid in one process on a `Clock` (as Tahoe-LAFS's no_network.py does): our real suppliers
(`Supplier`, `PieceStore` on a temporary disk, `Hookups` taking RequestService) and a real customer, joined by
an in-memory packet network that signs, verifies and delivers packets as the gateway does, without sockets.

The customer is dave of the storage capture; the suppliers share carol's identity and throwaway key under names
of their own. A supplier can be taken offline (its packets fail as to a dead process), held (its answers wait
until released) or made to lie (a byte of every share it serves changed)."""

from __future__ import annotations

import collections
import itertools
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.crypto import keys
from bitdust_node.crypto.packet_signing import packet_signature_valid, sign_packet
from bitdust_node.errors import NotFound
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.identity.my_identity import MyIdentity
from bitdust_node.storage import catalog_pages
from bitdust_node.storage.customer import Customer, StorageSettings
from bitdust_node.storage.customers import Customers
from bitdust_node.storage.patrol import CustomerPatrol
from bitdust_node.storage.store import PieceStore
from bitdust_node.storage.supplier import SERVICE_NAME, Supplier
from bitdust_node.storage.suppliers import Suppliers
from bitdust_node.transport.errors import TransportError
from bitdust_node.transport.hookups import Hookups
from bitdust_node.transport.interfaces import DEFAULT_TIMEOUT, Handler, Inbound, Timeout
from bitdust_node.wire import packet as wire
from bitdust_node.wire.identity_xml import Identity
from tests.storage.support import me

START = 1_796_155_000.0


class GridIdentities:
    """Every identity of the grid, known at once (an IdentityCache that never needs the network)."""

    def __init__(self) -> None:
        self.by_idurl: dict[str, Identity] = {}

    def get(self, idurl: str) -> Identity | None:
        return self.by_idurl.get(idurl)

    async def known(self, idurl: str) -> Identity:
        found = self.by_idurl.get(idurl)
        if found is None:
            raise NotFound(f"no identity at {idurl}")
        return found

    async def fetch(self, idurl: str) -> Identity:
        return await self.known(idurl)

    def check(self, idurl: str, identity: Identity) -> None:
        pass

    def keep(self, idurl: str, identity: Identity, xml: bytes) -> Identity:
        return identity


class GridNode:
    """One node's `PacketNetwork` on the grid."""

    def __init__(self, grid: MemoryGrid, mine: MyIdentity) -> None:
        self.grid = grid
        self.holder = MyIdentityHolder(grid.root / mine.identity.name, mine)
        self.idurl = mine.idurl
        self.handlers: dict[str, list[Handler]] = collections.defaultdict(list)
        self._pending: dict[str, list[tuple[wire.Packet, defer.Deferred[wire.Packet]]]] = {}
        self._ids = itertools.count(1)
        self.online = True
        # answers this node sends wait here while it is held
        self.held: list[Callable[[], None]] | None = None
        # a changed byte in the nested packet of every Data it answers a Retrieve with
        self.lying = False

    def new_packet_id(self) -> str:
        return f"{self.grid.clock.seconds():.0f}{next(self._ids)}"

    def outbox(
        self, command: str, remote_id: str, payload: bytes, packet_id: str | None = None,
        owner_id: str | None = None, payload_is_base64: bool = False,
    ) -> wire.Packet:
        mine = self.holder.require()
        unsigned = wire.Packet(command=command, owner_id=owner_id or mine.idurl, creator_id=mine.idurl,
                               packet_id=packet_id or self.new_packet_id(), date=wire.packet_date(START),
                               payload=payload, remote_id=remote_id, key_id=mine.key_id,
                               payload_is_base64=payload_is_base64)
        return sign_packet(unsigned, mine.key)

    def send(self, packet: wire.Packet, remote: Identity, wide: bool = False,
             timeout: float | None = None) -> defer.Deferred[None]:
        target = self.grid.nodes.get(packet.remote_id)
        if target is None or not target.online or not self.online:
            return defer.fail(TransportError(f"connection to {packet.remote_id} refused"))
        self.grid.sent[packet.command] += 1
        target.deliver(packet)
        return defer.succeed(None)

    def send_data(self, data: Any, remote: Identity, wide: bool = False) -> defer.Deferred[None]:
        return self.send(wire.parse(data if isinstance(data, bytes) else b"".join(data)), remote, wide)

    def request(self, packet: wire.Packet, remote: Identity, wide: bool = False,
                timeout: float = DEFAULT_TIMEOUT, on_sent: Callable[[], object] | None = None,
                ) -> defer.Deferred[wire.Packet]:
        answer: defer.Deferred[wire.Packet] = defer.Deferred()
        key = packet.packet_id.lower()
        waiting = self._pending.setdefault(key, [])
        entry = (packet, answer)
        waiting.append(entry)
        timer = self.grid.clock.callLater(
            timeout, lambda: answer.called or answer.errback(Timeout(f"no answer to {packet.command} in {timeout}")))

        def forget(result: Any) -> Any:
            if timer.active():
                timer.cancel()
            if entry in waiting:
                waiting.remove(entry)
            return result

        answer.addBoth(forget)
        sent = self.send(packet, remote, wide, timeout)
        if on_sent is not None:
            sent.addCallback(lambda _: on_sent())
        sent.addErrback(lambda failure: None if answer.called else answer.errback(failure))
        return answer

    def reply(self, request: Inbound, command: str, payload: bytes = b"", wide: bool = False,
              packet_id: str | None = None, owner_id: str | None = None) -> defer.Deferred[None]:
        if command == "Data" and self.lying:
            stored = wire.parse(payload)
            changed = bytearray(stored.payload)
            changed[len(changed) // 2] ^= 0x01
            payload = wire.serialize(attrs.evolve(stored, payload=bytes(changed)))
        answer = self.outbox(command, request.packet.owner_id, payload,
                             packet_id=packet_id or request.packet.packet_id, owner_id=owner_id)
        remote = self.grid.identities.by_idurl[request.packet.owner_id]
        if self.held is not None:
            self.held.append(lambda: self.send(answer, remote).addErrback(lambda _f: None))
            return defer.succeed(None)
        return self.send(answer, remote).addErrback(lambda _f: None)

    def register(self, command: str, handler: Handler) -> Callable[[], None]:
        self.handlers[command].append(handler)
        return lambda: self.handlers[command].remove(handler)

    def file_received(self, data: Any, session: Any = None) -> defer.Deferred[None]:
        self.deliver(wire.parse(data if isinstance(data, bytes) else b"".join(data)))
        return defer.succeed(None)

    def fail_pending(self, packet_id: str, remote_id: str, error: Exception) -> bool:
        waiting = [a for r, a in self._pending.get(packet_id.lower(), []) if r.remote_id == remote_id]
        for answer in waiting:
            if not answer.called:
                answer.errback(error)
        return bool(waiting)

    def fail_pending_to(self, remote_id: str, error: Exception) -> int:
        waiting = [a for entries in self._pending.values() for r, a in entries if r.remote_id == remote_id]
        for answer in waiting:
            if not answer.called:
                answer.errback(error)
        return len(waiting)

    def add_forwarder(self, forwarder: Any) -> Callable[[], None]:
        return lambda: None

    def use_route(self, route: Any) -> Callable[[], None]:
        return lambda: None

    def deliver(self, packet: wire.Packet) -> None:
        """A packet arrives: verified as the gateway verifies it, then an awaited answer or a handler's."""
        creator = self.grid.identities.by_idurl[packet.creator_id]
        if not packet_signature_valid(packet, keys.public_key_from_openssh(creator.publickey)):
            raise AssertionError(f"bad signature on {packet.command}({packet.packet_id})")
        for request, answer in list(self._pending.get(packet.packet_id.lower(), [])):
            if request.remote_id == packet.creator_id and not answer.called:
                answer.callback(packet)
                return
        carried = creator if packet.command == "Identity" else None
        inbound = Inbound(packet, creator, packet.remote_id == self.idurl, wire.serialize(packet), carried)
        for handler in list(self.handlers.get(packet.command, [])):
            defer.maybeDeferred(handler, inbound).addErrback(lambda f: self.grid.errors.append(f))

    def release(self) -> None:
        held, self.held = self.held or [], None
        for send in held:
            send()


@attrs.define
class GridSupplier:
    node: GridNode
    supplier: Supplier
    store: PieceStore
    patrol: CustomerPatrol

    @property
    def idurl(self) -> str:
        return self.node.idurl

    def pieces(self) -> list[Path]:
        return sorted(p for p in self.store.root.rglob("*-Data") if p.is_file())


def small_pages(test: SynchronousTestCase) -> None:
    """Pages of a few KB for `test` (catalog_pages), so that a catalog of a few hundred entries is paged."""
    test.patch(catalog_pages, "PAGED_FROM", 20_000)
    test.patch(catalog_pages, "PAGE_TEXT", 4_000)


def drops_when_refusing_more(short: GridSupplier, donated: int) -> None:
    """`short` has `donated` bytes, and drops a customer it refuses more space, with what it stored, as official
    suppliers do (PROTOCOL-P2P.md 3.3; ours keep it)."""
    short.supplier.donated = lambda: donated  # type: ignore[method-assign]
    real = short.supplier.request_service

    def as_official_suppliers_do(inbound: Any, payload: Any) -> Any:
        def dropped(answer: Any) -> Any:
            if answer.payload.startswith(b"deny"):
                short.supplier.drop_customer(inbound.packet.creator_id)
            return answer

        return defer.maybeDeferred(real, inbound, payload).addCallback(dropped)

    short.supplier.request_service = as_official_suppliers_do  # type: ignore[method-assign]


class MemoryGrid:
    def __init__(self, root: Path, suppliers: int = 5) -> None:
        self.root = root
        self.clock = Clock()
        self.clock.advance(START)
        self.identities = GridIdentities()
        self.nodes: dict[str, GridNode] = {}
        self.sent: collections.Counter[str] = collections.Counter()
        self.errors: list[Any] = []
        self.rng = random.Random(7)
        self.idle_days = 14.0
        self.suppliers = [self.add_supplier(f"sup{number}") for number in range(suppliers)]

    def add_node(self, mine: MyIdentity) -> GridNode:
        node = GridNode(self, mine)
        self.nodes[node.idurl] = node
        self.identities.by_idurl[node.idurl] = mine.identity
        return node

    def add_supplier(self, name: str, donated: int = 1 << 30) -> GridSupplier:
        carol = me("carol")
        source = f"http://127.0.0.1:8084/{name}.xml"
        node = self.add_node(MyIdentity(attrs.evolve(carol.identity, sources=(source,)), carol.key))
        home = self.root / name
        store = PieceStore(home / "customers")
        supplier = Supplier(node, node.holder, store, Customers.load(home / "customers.json"), lambda: donated,
                            self.clock, disk_in_thread=False)
        supplier.start()
        hookups = Hookups(node, node.holder, self.identities, self.clock,
                          lambda name: "ON" if name == SERVICE_NAME else None)
        hookups.accept_requests(SERVICE_NAME, supplier)
        patrol = CustomerPatrol(node, supplier, home, self.clock, lambda: self.idle_days, worker=defer.maybeDeferred)
        patrol.start()
        return GridSupplier(node, supplier, store, patrol)

    def supplier(self, idurl: str) -> GridSupplier:
        return next(s for s in self.suppliers if s.idurl == idurl)

    async def random_nodes(self, layer_id: int, count: int = 1) -> list[Identity]:
        """DHT layer 3 as a seeded random pick of the suppliers that are up."""
        up = [s for s in self.suppliers if s.node.online]
        self.rng.shuffle(up)
        return [self.identities.by_idurl[s.idurl] for s in up[:count]]


def customer_settings(values: dict[str, Any]) -> StorageSettings:
    """`services/customer/*` from `values` (a test changes them live), the defaults for what it leaves out."""
    base = {"suppliers-number": 4, "needed-space": "64 MB", "block-size": "64 KB", "preferred-suppliers": "",
            "health-check-interval-seconds": 3600, "replace-offline-after-seconds": 86400}
    return StorageSettings(lambda key: values.get(key, base[key]))


def make_customer(grid: MemoryGrid, folder: Path | None = None, values: dict[str, Any] | None = None,
                  **settings: Any) -> Customer:
    """dave, as a customer on the grid (its pieces sealed, signed and checked for real, no thread used)."""
    node = grid.nodes.get(me("dave").idurl) or grid.add_node(me("dave"))
    folder = folder or grid.root / "dave" / "customer"
    hookups = Hookups(node, node.holder, grid.identities, grid.clock,
                      lambda name: None)
    suppliers = Suppliers(node, hookups, node.holder, grid.identities, grid, None, folder / "suppliers.json",
                          grid.clock)
    values = values if values is not None else {}
    values.update(settings)
    return Customer(node, node.holder, grid.identities, suppliers, customer_settings(values), folder, grid.clock,
                    worker=defer.maybeDeferred, rng=random.Random(3))
