"""service_supplier: space donated to customers (`donated-space`), their pieces kept in the home; this node
says so in DHT layer 3, where customers look for suppliers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer, threads
from twisted.internet.task import LoopingCall

from bitdust_node.dht.membership import LayerMembership
from bitdust_node.services.base import Service
from bitdust_node.services.entangled_dht import EntangledDhtService
from bitdust_node.services.gateway import GatewayService
from bitdust_node.services.identity_propagate import IdentityPropagateService
from bitdust_node.services.p2p_hookups import P2pHookupsService
from bitdust_node.sizes import size_to_bytes

if TYPE_CHECKING:
    from bitdust_node.storage.patrol import CustomerPatrol
    from bitdust_node.storage.supplier import Supplier

SUPPLIERS_LAYER = 3
CUSTOMERS_DIR = "customers"
CUSTOMERS_FILE = ("supplier", "customers.json")
# bytes stored per customer, as an orderly stop left them (storage/store.py)
USAGE_FILE = ("supplier", "usage.json")
# the official customer_patrol's setting: its own service there, the supplier's job here
IDLE_DAYS = "services/customer-patrol/customer-idle-days"


class SupplierService(Service):
    name = "supplier"
    needs_identity = True

    supplier: Supplier | None = None
    patrol: CustomerPatrol

    def start(self) -> defer.Deferred[None]:
        # the room's code is imported when the service starts: a node that leaves it off never loads it
        from bitdust_node.storage.customers import Customers
        from bitdust_node.storage.family import REFRESH_INTERVAL
        from bitdust_node.storage.patrol import CustomerPatrol
        from bitdust_node.storage.store import PieceStore
        from bitdust_node.storage.supplier import SERVICE_NAME, Supplier

        ctx = self.ctx
        gateway = self.need(GatewayService).gateway
        hookups = self.need(P2pHookupsService).hookups
        assert gateway is not None and hookups is not None
        store = PieceStore(ctx.home / CUSTOMERS_DIR, ctx.home.joinpath(*USAGE_FILE))
        customers = Customers.load(ctx.home.joinpath(*CUSTOMERS_FILE), ctx.identity_cache.aliases,
                                   threads.deferToThread)
        supplier = Supplier(gateway, ctx.identity, store, customers, self.donated, ctx.reactor)
        supplier.start()
        self._stop_accepting = hookups.accept_requests(SERVICE_NAME, supplier)
        # my customers hear of my identity's moves
        self._unlist = self.need(IdentityPropagateService).peers.add("customers", lambda: list(customers.by_idurl))
        self.supplier = supplier
        self.patrol = CustomerPatrol(gateway, supplier, ctx.home / CUSTOMERS_FILE[0], ctx.reactor,
                                     lambda: float(ctx.settings.get(IDLE_DAYS)))
        self.patrol.start()
        self._dht = self.need(EntangledDhtService).dht
        self._membership = LayerMembership(self._dht, SUPPLIERS_LAYER, ctx.reactor)
        self._membership.start()
        self._renewing = LoopingCall(self.renew_families)
        self._renewing.clock = ctx.reactor
        self._renewing.start(REFRESH_INTERVAL, now=False)
        return defer.succeed(None)

    def renew_families(self) -> defer.Deferred[Any]:
        """Keep my customers' family records alive in the DHT while I serve them."""
        return defer.ensureDeferred(self._renew())

    async def _renew(self) -> None:
        from bitdust_node.storage.family import renew_family

        supplier, dht, me = self.supplier, self._dht, self.ctx.identity.current
        if supplier is None or dht is None or me is None:
            return
        for customer in list(supplier.customers.by_idurl.values()):
            try:
                if await renew_family(dht, customer.idurl, me.idurl, customer.family, self.ctx.reactor.seconds()):
                    supplier.counters["families_renewed"] += 1
            except Exception as err:  # one customer's record failing must not stop the others'
                self.log.info("family record of {idurl} not renewed: {why}", idurl=customer.idurl, why=str(err))

    def donated(self) -> int:
        return size_to_bytes(str(self.setting("donated-space")))

    def stop(self) -> defer.Deferred[None]:
        if self._renewing.running:
            self._renewing.stop()
        self._membership.stop()
        self._stop_accepting()
        self._unlist()
        patrolled = self.patrol.stop()
        supplier, self.supplier = self.supplier, None
        if supplier is None:
            return patrolled
        # the use per customer is saved once the disk work asked before the stop is done
        written = defer.gatherResults([patrolled, supplier.stop()], consumeErrors=True)
        return written.addBoth(lambda _: self._save_usage(supplier))

    def _save_usage(self, supplier: Supplier) -> None:
        try:
            supplier.store.close()
        except OSError as err:  # the next start counts the customers' folders instead
            self.log.warn("usage of the customers not saved: {why}", why=str(err))

    def status(self) -> dict[str, object]:
        supplier = self.supplier
        if supplier is None:
            return {}
        return {"customers": len(supplier.customers.by_idurl), "counters": dict(supplier.counters),
                "refused": dict(supplier.refusals), "customers_reclaimed": self.patrol.reclaimed}
