"""service_customer: files stored on `suppliers-number` suppliers, any half of which may vanish."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import attrs
from twisted.internet import defer
from twisted.internet.task import LoopingCall

from bitdust_node.services.base import Service
from bitdust_node.services.entangled_dht import EntangledDhtService
from bitdust_node.services.gateway import GatewayService
from bitdust_node.services.identity_propagate import IdentityPropagateService
from bitdust_node.services.nodes_lookup import NodesLookupService
from bitdust_node.services.p2p_hookups import P2pHookupsService

if TYPE_CHECKING:
    from bitdust_node.storage.customer import Customer

CUSTOMER_DIR = "customer"
# how often the customer looks for suppliers while it has fewer than it wants
HIRE_INTERVAL = 10.0


class CustomerService(Service):
    name = "customer"
    needs_identity = True
    # read each time they are needed (StorageSettings): a change applies without a restart, which would cut the
    # transfers under way (a new needed-space reaches the suppliers hired in the next round)
    live_settings: ClassVar[frozenset[str]] = frozenset({
        "needed-space", "block-size", "preferred-suppliers", "health-check-interval-seconds",
        "replace-offline-after-seconds",
    })

    customer: Customer | None = None

    def start(self) -> defer.Deferred[None]:
        # the room's code is imported when the service starts: a node that leaves it off never loads it
        from bitdust_node.storage.customer import Customer, StorageSettings
        from bitdust_node.storage.suppliers import Suppliers

        ctx = self.ctx
        gateway = self.need(GatewayService).gateway
        hookups = self.need(P2pHookupsService).hookups
        lookup = self.need(NodesLookupService).lookup
        dht = self.need(EntangledDhtService).dht
        assert gateway is not None and hookups is not None
        folder = ctx.home / CUSTOMER_DIR
        suppliers = Suppliers(gateway, hookups, ctx.identity, ctx.identity_cache, lookup, dht,
                              folder / "suppliers.json", ctx.reactor)
        self.customer = Customer(gateway, ctx.identity, ctx.identity_cache, suppliers, StorageSettings(self.setting),
                                 folder, ctx.reactor)
        # my suppliers hear of my identity's moves
        self._unlist = self.need(IdentityPropagateService).peers.add(
            "suppliers", lambda: [slot.idurl for slot in suppliers.slots if slot.idurl])
        self.customer.start()
        self._busy: defer.Deferred[Any] | None = None
        self._published = ctx.reactor.seconds()
        self._hiring = LoopingCall(self._hire)
        self._hiring.clock = ctx.reactor
        self._hiring.start(HIRE_INTERVAL, now=True)
        return defer.succeed(None)

    def _hire(self) -> None:
        from bitdust_node.storage.family import REFRESH_INTERVAL

        customer = self.customer
        if customer is None or self._busy is not None:
            return
        if customer.keeper.fetch_first and len(customer.suppliers.connected()) >= customer.settings.suppliers:
            # no copy of my catalog read here: the suppliers' is taken before anything else (connect(), which hires
            # when short of suppliers, fetches it too); the family record stays fresh meanwhile
            work = [defer.ensureDeferred(customer.recover_catalog())]
            if self.ctx.reactor.seconds() - self._published >= REFRESH_INTERVAL:
                self._published = self.ctx.reactor.seconds()
                work.append(defer.ensureDeferred(customer.suppliers.publish_family(customer.settings.suppliers)))
            self._busy = defer.gatherResults(work, consumeErrors=True)
            self._busy.addErrback(lambda f: self.log.info("fetching my catalog: {why}", why=f.getErrorMessage()))
            self._busy.addBoth(lambda _: setattr(self, "_busy", None))
            return
        if len(customer.suppliers.connected()) >= customer.settings.suppliers:
            if customer.suppliers.to_ask_again(customer.per_supplier()):
                # the space I need changed (`bitdust set services/customer/needed-space ...`), or my catalog grew
                self._busy = defer.ensureDeferred(customer.keep_space())
                self._busy.addErrback(lambda f: self.log.info("asking suppliers for space: {why}",
                                                              why=f.getErrorMessage()))
                self._busy.addBoth(lambda _: setattr(self, "_busy", None))
                return
            if self.ctx.reactor.seconds() - self._published >= REFRESH_INTERVAL:
                self._published = self.ctx.reactor.seconds()
                self._busy = defer.ensureDeferred(customer.suppliers.publish_family(customer.settings.suppliers))
                self._busy.addBoth(lambda _: setattr(self, "_busy", None))
            return
        self._published = self.ctx.reactor.seconds()
        self._busy = defer.ensureDeferred(customer.connect())
        self._busy.addErrback(lambda f: self.log.info("hiring suppliers: {why}", why=f.getErrorMessage()))
        self._busy.addBoth(lambda _: setattr(self, "_busy", None))

    def stop(self) -> defer.Deferred[None]:
        self._unlist()
        if self._hiring.running:
            self._hiring.stop()
        customer, self.customer = self.customer, None
        if customer is None:
            return defer.succeed(None)
        return defer.ensureDeferred(customer.stop()).addErrback(
            lambda f: self.log.warn("customer stopped with an error: {why}", why=f.getErrorMessage()))

    def status(self) -> dict[str, object]:
        customer = self.customer
        if customer is None:
            return {}
        repairs = customer.repairs.progress
        return {"suppliers": len(customer.suppliers.connected()), "wanted": customer.settings.suppliers,
                "catalog_revision": customer.catalog.revision, "counters": dict(customer.counters),
                # none stored: what the last save added is on this machine only
                "catalog_last_save": attrs.asdict(customer.keeper.last_save),
                "last_check": customer.health.last_round,
                "repair": {"degraded_blocks": len(customer.health.bad), "queued": repairs.queued,
                           "running": repairs.running, "waiting_for_suppliers": repairs.waiting_for_suppliers,
                           "repaired_blocks": repairs.repaired_blocks,
                           "bytes_repaired": customer.counters["bytes_repaired"]}}
