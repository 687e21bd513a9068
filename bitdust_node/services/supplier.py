"""service_supplier: space donated to customers (`donated-space`), their pieces kept in the home; this node
says so in DHT layer 3, where customers look for suppliers."""

from __future__ import annotations

from twisted.internet import defer

from bitdust_node.net.clock import DelayedCall
from bitdust_node.services.base import Service
from bitdust_node.services.entangled_dht import EntangledDhtService
from bitdust_node.services.gateway import GatewayService
from bitdust_node.services.p2p_hookups import P2pHookupsService
from bitdust_node.sizes import size_to_bytes
from bitdust_node.storage.customers import Customers
from bitdust_node.storage.store import PieceStore
from bitdust_node.storage.supplier import SERVICE_NAME, Supplier

SUPPLIERS_LAYER = 3
CUSTOMERS_DIR = "customers"
CUSTOMERS_FILE = ("supplier", "customers.json")
# asked again 1, 2, 4 ... 60 s until a member of layer 3 is known to me
LAYER_JOIN_FIRST = 1.0
LAYER_JOIN_MAX = 60.0


class SupplierService(Service):
    name = "supplier"
    needs_identity = True

    supplier: Supplier | None = None

    def start(self) -> defer.Deferred[None]:
        ctx = self.ctx
        gateway = self.need(GatewayService).gateway
        hookups = self.need(P2pHookupsService).hookups
        assert gateway is not None and hookups is not None
        store = PieceStore(ctx.home / CUSTOMERS_DIR)
        customers = Customers.load(ctx.home.joinpath(*CUSTOMERS_FILE))
        supplier = Supplier(gateway, ctx.identity, store, customers, self.donated, ctx.reactor)
        supplier.start()
        self._stop_accepting = hookups.accept_requests(SERVICE_NAME, supplier)
        self.supplier = supplier
        self._dht = self.need(EntangledDhtService).dht
        self._join_delay = LAYER_JOIN_FIRST
        self._joiner: DelayedCall | None = None
        self._join_layer()
        return defer.succeed(None)

    def donated(self) -> int:
        return size_to_bytes(str(self.setting("donated-space")))

    def _join_layer(self) -> None:
        self._joiner = None
        dht = self._dht
        if dht is None or self.supplier is None:
            return
        dht.join_layer(SUPPLIERS_LAYER).addErrback(
            lambda f: self.log.info("joining DHT layer 3: {why}", why=f.getErrorMessage()))
        if not dht.contact_count(SUPPLIERS_LAYER):
            self._joiner = self.ctx.reactor.callLater(self._join_delay, self._join_layer)
            self._join_delay = min(self._join_delay * 2, LAYER_JOIN_MAX)

    def stop(self) -> defer.Deferred[None]:
        if self._joiner is not None and self._joiner.active():
            self._joiner.cancel()
        if self._dht is not None:
            self._dht.leave_layer(SUPPLIERS_LAYER)
        self._stop_accepting()
        if self.supplier is not None:
            self.supplier.stop()
        self.supplier = None
        return defer.succeed(None)

    def status(self) -> dict[str, object]:
        return self.supplier.status() if self.supplier is not None else {}
