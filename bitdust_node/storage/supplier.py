"""The supplier (PROTOCOL-P2P.md 3.3, 5.1): customers rent space with RequestService `service_supplier`,
then store Data packets whole, get them back nested in a Data packet (Retrieve), list what is stored
(ListFiles -> Files, encrypted to them) and delete it (DeleteFile, DeleteBackup). Answers and refusals
are the official texts; a refused packet writes nothing and discloses nothing.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet import defer, threads
from twisted.logger import Logger

from bitdust_node.crypto import block as blocks
from bitdust_node.crypto import keys
from bitdust_node.crypto.packet_signing import packet_signature_valid
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.storage.customers import Customer, Customers
from bitdust_node.storage.paths import MAX_LISTED_IDS, BadPath, PiecePath, parse_piece_id
from bitdust_node.storage.store import PieceStore, StoreError
from bitdust_node.transport.hookups import ServiceAnswer
from bitdust_node.transport.interfaces import Inbound, PacketNetwork
from bitdust_node.wire import packet as wire
from bitdust_node.wire import packet_fast
from bitdust_node.wire.identity_xml import parse_idurl, serialize
from bitdust_node.wire.tcp_frames import file_size

log = Logger()
SERVICE_NAME = "service_supplier"
DENY_SPACE = 'deny:{"reason": "not enough space available"}'
# the official deny's shape: official customers take any Ack not starting with `accepted` as a refusal
DENY_CUSTOMERS = 'deny:{"reason": "too many customers"}'
DENY_IDENTITY = 'deny:{"reason": "identity file too large"}'
NOT_FOUND = "did not found requested file locally"
NO_SPACE = "no free space left for customer data"
NOT_A_CUSTOMER = "not a customer, or file not found"
# bytes of accepted pieces waiting for the disk, all customers together, past which the connection a piece came
# on is not read until that piece is written (the sender waits in TCP instead of in this node's memory)
MAX_WAITING_BYTES = 64 * 1024 * 1024
# customers kept at once: each is a record rewritten with the others and an identity the cache never forgets
MAX_CUSTOMERS = 10_000
# a new customer's identity file at most: each is pinned in the identity cache (10,000 of MAX_IDENTITY_BYTES would
# pin 500 MB); one with a 4096-bit key, 6 sources and 4 contacts is about 3 KB
MAX_CUSTOMER_IDENTITY_BYTES = 8 * 1024


class Supplier:
    def __init__(
        self,
        gateway: PacketNetwork,
        me: MyIdentityHolder,
        store: PieceStore,
        customers: Customers,
        donated: Callable[[], int],
        clock: Any,
        disk_in_thread: bool = True,
    ) -> None:
        self.gateway = gateway
        self.me = me
        self.store = store
        self.customers = customers
        self.donated = donated
        self.clock = clock
        self.counters: collections.Counter[str] = collections.Counter()
        self.refusals: collections.Counter[str] = collections.Counter()
        self._unregister: list[Callable[[], None]] = []
        # disk changes run one at a time in a worker thread, in the order they were asked: the reactor goes on
        # receiving and checking the next pieces while one is fsynced. They are bounded by the gateway's cap
        # on packets in handling, since a Data packet is handled until its piece is written and acked.
        self._disk = defer.DeferredLock()
        # bytes of pieces accepted but not yet written, by customer: counted against the quota meanwhile
        self._pending: collections.Counter[str] = collections.Counter()
        # a reactor without threads (a test's memory reactor) has the disk work done where it is asked
        self._disk_runner: Callable[..., defer.Deferred[Any]] = (
            threads.deferToThread if disk_in_thread else defer.maybeDeferred)

    def start(self) -> None:
        self._unregister = [
            self.gateway.register("Data", self.data_received),
            self.gateway.register("Retrieve", self.retrieve_received),
            self.gateway.register("ListFiles", self.list_files_received),
            self.gateway.register("DeleteFile", self.delete_received),
            self.gateway.register("DeleteBackup", self.delete_received),
        ]

    def stop(self) -> defer.Deferred[None]:
        """No more packets taken; fires once the disk work already asked is done."""
        for unregister in self._unregister:
            unregister()
        self._unregister = []
        done = defer.gatherResults([self._disk.run(defer.succeed, None), self.customers.flushed()])
        return done.addCallback(lambda _: None)

    # -- renting space (RemoteRequests)

    def free(self, but: str | None = None) -> int:
        return self.donated() - self.customers.allocated(but)

    def request_service(
        self, inbound: Inbound, payload: dict[str, Any],
    ) -> ServiceAnswer | defer.Deferred[ServiceAnswer]:
        # a customer whose identity moved is the one it was: its record, its folder
        known = self.customers.get(inbound.packet.creator_id)
        idurl = known.idurl if known is not None else inbound.packet.creator_id
        needed = payload.get("needed_bytes")
        if "needed_bytes" not in payload:
            return self._refuse_request("invalid_payload", idurl, ServiceAnswer.fail("invalid payload"))
        # 0 too, as official suppliers do: nobody becomes a customer (a record, a pinned identity) for nothing
        if isinstance(needed, bool) or not isinstance(needed, int) or needed <= 0:
            return self._refuse_request("bad_value", idurl, ServiceAnswer.fail("wrong storage value"))
        if known is None and len(self.customers.by_idurl) >= MAX_CUSTOMERS:
            return self._refuse_request("too_many_customers", idurl, ServiceAnswer.ack(DENY_CUSTOMERS))
        if known is None and len(serialize(inbound.creator)) > MAX_CUSTOMER_IDENTITY_BYTES:
            return self._refuse_request("identity_too_large", idurl, ServiceAnswer.ack(DENY_IDENTITY))
        if needed >= self.free(but=idurl):
            return self._refuse_request("no_space", idurl, ServiceAnswer.ack(DENY_SPACE))
        position = payload.get("position")
        family = payload.get("family_snapshot")
        saved = self.customers.put(Customer(
            idurl=idurl,
            global_id=known.global_id if known is not None else parse_idurl(idurl).global_id,
            allocated=needed,
            ecc_map=str(payload.get("ecc_map") or ""),
            position=position if isinstance(position, int) and not isinstance(position, bool) else -1,
            family=[f for f in family if isinstance(f, str)][:64] if isinstance(family, list) else [],
            since=known.since if known is not None else self.clock.seconds(),
        ))

        def accepted(_: None) -> ServiceAnswer:
            self.counters["customers_accepted"] += 1
            return ServiceAnswer.ack("accepted")

        # accepted once on the disk: a customer told yes is one still after a crash
        return saved.addCallback(accepted)

    def cancel_service(self, inbound: Inbound, payload: dict[str, Any]) -> ServiceAnswer:
        if self.drop_customer(inbound.packet.creator_id) is None:
            return ServiceAnswer.fail("not a customer")
        self.counters["customers_cancelled"] += 1
        return ServiceAnswer.ack("accepted")

    def drop_customer(self, idurl: str) -> defer.Deferred[None] | None:
        """The customer forgotten, its space back in the pool and what it stored removed (after its queued
        writes); the removal, or None when it was not a customer."""
        gone = self.customers.remove(idurl)
        if gone is None:
            return None
        removed = self._on_disk(self.store.remove_customer, gone.global_id)
        removed.addCallback(lambda _: self.store.used.pop(gone.global_id, None) and None)
        removed.addErrback(lambda f: log.warn("folder of {user} not removed: {why}", user=gone.idurl,
                                              why=f.getErrorMessage()))
        return removed

    def _refuse_request(self, why: str, idurl: str, answer: ServiceAnswer) -> ServiceAnswer:
        self.refusals["request_" + why] += 1
        log.info("storage request of {user} refused: {why}", user=idurl, why=why)
        return answer

    # -- helpers

    def _refuse(self, inbound: Inbound, why: str, text: str) -> defer.Deferred[None]:
        self.refusals[why] += 1
        log.info("{cmd}({pid}) from {peer} refused: {text}", cmd=inbound.packet.command,
                 pid=inbound.packet.packet_id[:120], peer=inbound.packet.creator_id, text=text)
        return self.gateway.reply(inbound, "Fail", text.encode("utf-8"))

    def _own_piece(self, inbound: Inbound, allow_folder: bool = False) -> tuple[Customer, PiecePath] | str:
        """The customer and the piece its packet names, or the official refusal text."""
        packet = inbound.packet
        try:
            piece = parse_piece_id(packet.packet_id, allow_folder=allow_folder)
        except BadPath:
            return "incorrect path"
        customer = self.customers.written(packet.creator_id)
        if customer is None or packet.owner_id != packet.creator_id:
            return NOT_A_CUSTOMER
        mine = _in_folder(piece, customer, packet.creator_id)
        if mine is None or piece.alias != "master":
            return "incorrect path"  # another customer's folder, or a shared key this supplier does not hold
        return customer, mine

    # -- Data: store a piece

    def data_received(self, inbound: Inbound) -> defer.Deferred[None] | None:
        packet = inbound.packet
        me = self.me.current
        if not inbound.for_me or me is None or packet.owner_id == me.idurl:
            return None
        found = self._own_piece(inbound)
        if isinstance(found, str):
            self._refuse(inbound, "data_" + found.split()[0], found)
            return None  # its answer goes without this waiting for the peer's `o`: the piece's bytes go now
        customer, piece = found
        # the bytes the customer signed and sent, verified (whole, or split around the payload's text): nothing to
        # serialize again
        stored = inbound.raw
        size = file_size(stored)
        owner = customer.global_id
        used_without = self.store.used[owner] + self._pending[owner] - self.store.size_of(piece)
        if used_without + size > customer.allocated:
            self._refuse(inbound, "data_over_quota", NO_SPACE)
            return None
        self._pending[owner] += size
        written = self._on_disk(self.store.write_file, piece, stored)
        if sum(self._pending.values()) > MAX_WAITING_BYTES and inbound.session is not None:
            # until the write, not the Ack: the Ack's `o` comes back on the connection that is held
            self.counters["reading_held"] += 1
            inbound.session.hold_reading(written)
        return defer.ensureDeferred(self._store(inbound, piece, size, written))

    async def _store(self, inbound: Inbound, piece: PiecePath, size: int, written: defer.Deferred[int]) -> None:
        try:
            grown = await written
        except StoreError as err:
            log.warn("piece {pid} not stored: {why}", pid=inbound.packet.packet_id, why=str(err))
            self._refuse(inbound, "data_write_error", "write error")
            return
        finally:
            self._pending[piece.customer] -= size
            if not self._pending[piece.customer]:
                del self._pending[piece.customer]
        self.store.used[piece.customer] += grown
        self.counters["pieces_stored"] += 1
        self.counters["bytes_stored"] += size
        # not awaited: its delivery (the peer's `o`, up to the ack timeout) must not keep the piece's bytes once they
        # are written (gateway.reply says a failed delivery itself)
        self.gateway.reply(inbound, "Ack", str(len(inbound.packet.payload)).encode())

    async def usage_of_all(self) -> dict[str, int]:
        """Every customer folder's use. Those not counted yet (all of them after a crash: a million pieces take
        seconds) are counted in the disk worker, in order with the writes and deletes, not on the reactor; a
        customer counted meanwhile (a Data or delete of its own counts it first) keeps its own figure."""
        counts = await self._on_disk(self.store.used.count_unknown)
        for customer, counted in counts.items():
            if customer not in self.store.used:
                self.store.used[customer] = counted
        return dict(self.store.used)

    def _on_disk(self, work: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        """`work` in a worker thread once the disk changes asked before it are done."""
        return self._disk.run(self._disk_runner, work, *args)

    # -- Retrieve: a stored piece back, nested in my Data packet

    def retrieve_received(self, inbound: Inbound) -> defer.Deferred[None] | None:
        if not inbound.for_me:
            return None
        found = self._own_piece(inbound)
        if isinstance(found, str):
            return self._refuse(inbound, "retrieve_refused", found if found == "incorrect path" else
                                "incorrect retrieve request")
        _customer, piece = found
        # from the disk (not its cache: direct_io.py) in the disk's worker, in order with the writes and deletes
        return defer.ensureDeferred(self._retrieve(inbound, piece))

    async def _retrieve(self, inbound: Inbound, piece: PiecePath) -> None:
        data = await self._on_disk(self.store.read, piece)
        if data is None:
            await self._refuse(inbound, "retrieve_not_found", NOT_FOUND)
            return
        key = keys.public_key_from_openssh(inbound.creator.publickey)
        # parsing and hashing a megabyte (which releases the GIL) in a worker thread: the reactor goes on meanwhile
        stored = await self._disk_runner(_stored_packet, data, key)
        if not isinstance(stored, wire.Packet):
            await self._refuse(inbound, *stored)
            return
        # the answer carries the PacketID asked: an index piece is asked for by a new one each time, and a customer
        # whose identity moved asks by its new global id for what it stored by its old one
        self.counters["pieces_served"] += 1
        await self.gateway.reply(inbound, "Data", data, packet_id=inbound.packet.packet_id, owner_id=stored.owner_id)

    # -- ListFiles: what I hold for the customer, encrypted to it

    def list_files_received(self, inbound: Inbound) -> defer.Deferred[None] | None:
        if not inbound.for_me:
            return None
        packet = inbound.packet
        key_id = packet.packet_id.partition(":")[0]
        customer = self.customers.written(packet.creator_id)
        # by its global id now or the one it had when it became my customer
        named = (customer.global_id, parse_idurl(packet.creator_id).global_id) if customer is not None else ()
        if customer is None or key_id not in [f"master${gid}" for gid in named]:
            return self._refuse(inbound, "list_files_refused", "key not registered")
        me = self.me.require()
        listing = self.store.listing(customer.global_id, "master", max(customer.position, 0))
        to = keys.public_key_from_openssh(inbound.creator.publickey)
        payload = blocks.seal(listing, key_id, me.idurl, to, me.key)
        self.counters["listings"] += 1
        return self.gateway.reply(inbound, "Files", payload)

    # -- DeleteFile / DeleteBackup

    def delete_received(self, inbound: Inbound) -> defer.Deferred[None] | None:
        if not inbound.for_me:
            return None
        packet = inbound.packet
        customer = self.customers.written(packet.creator_id)
        ids = [packet.packet_id]
        listed = ":" not in packet.packet_id  # a UniqueID: the ids are the payload's lines
        if listed:
            lines = packet.payload.decode("utf-8", "replace").splitlines()
            ids = [line for line in lines if line.strip()][:MAX_LISTED_IDS]
        pieces = []
        for one in ids:
            try:
                piece = parse_piece_id(one, allow_folder=True)
            except BadPath:
                return self._refuse(inbound, "delete_bad_path",
                                    "incorrect backupID" if packet.command == "DeleteBackup" else "incorrect path")
            mine = _in_folder(piece, customer, packet.creator_id) if customer is not None else None
            if mine is None or piece.alias != "master":
                if not listed:
                    return self._refuse(inbound, "delete_refused", NOT_A_CUSTOMER)
                # in a list, as official suppliers do: what is not the customer's is passed over, the rest goes
                self.refusals["delete_skipped"] += 1
                log.info("{cmd} from {peer}: {one} is not theirs, passed over", cmd=packet.command,
                         peer=packet.creator_id, one=one[:120])
                continue
            pieces.append(mine)
        if not pieces:
            return self._refuse(inbound, "delete_refused", NOT_A_CUSTOMER)
        return defer.ensureDeferred(self._delete(inbound, pieces))

    async def _delete(self, inbound: Inbound, pieces: list[PiecePath]) -> None:
        """The pieces removed in order with the writes queued before them, then Ack (or Fail if none was)."""
        deleted = 0
        for customer in {piece.customer for piece in pieces}:
            # a customer not counted yet (after a crash) is counted before its pieces go, not after: then the
            # bytes freed would be taken off a count that no longer held them
            self.store.used.counted(customer)
        for piece in pieces:
            try:
                freed = await self._on_disk(self.store.remove, piece)
            except OSError as err:
                log.warn("{piece} not deleted: {why}", piece=piece.relative(), why=str(err))
                continue
            if freed is not None:
                self.store.used[piece.customer] -= freed
                deleted += 1
        if not deleted:
            await self._refuse(inbound, "delete_not_found", NOT_A_CUSTOMER)
            return
        self.counters["deleted"] += deleted
        await self.gateway.reply(inbound, "Ack", b"")


def _stored_packet(data: bytes, key: Any) -> wire.Packet | tuple[str, str]:
    """(Safe in a worker thread.) A stored piece's packet when its signature checks with `key`, else why not: the
    refusal's counter and its official text."""
    try:
        stored = packet_fast.parse(data)
    except wire.PacketFormatError:
        return "retrieve_unreadable", "unserialize failed"
    return stored if packet_signature_valid(stored, key) else ("retrieve_invalid", "stored packet is not valid")


def _in_folder(piece: PiecePath, customer: Customer, creator_id: str) -> PiecePath | None:
    """The piece in the customer's folder when it names the customer by its global id now or the one it had
    when it became my customer (its identity may have moved since); None for another customer's piece."""
    if piece.customer not in (customer.global_id, parse_idurl(creator_id).global_id):
        return None
    return attrs.evolve(piece, customer=customer.global_id)
