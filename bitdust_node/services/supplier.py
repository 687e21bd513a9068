"""service_supplier: space donated to customers (`donated-space`), their pieces kept in the home; this node
says so in DHT layer 3, where customers look for suppliers."""

from __future__ import annotations

from twisted.internet import defer

from bitdust_node.dht.membership import LayerMembership
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
        self._membership = LayerMembership(self.need(EntangledDhtService).dht, SUPPLIERS_LAYER, ctx.reactor)
        self._membership.start()
        return defer.succeed(None)

    def donated(self) -> int:
        return size_to_bytes(str(self.setting("donated-space")))

    def stop(self) -> defer.Deferred[None]:
        self._membership.stop()
        self._stop_accepting()
        if self.supplier is not None:
            self.supplier.stop()
        self.supplier = None
        return defer.succeed(None)

    def status(self) -> dict[str, object]:
        return self.supplier.status() if self.supplier is not None else {}
