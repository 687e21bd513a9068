"""service_nodes_lookup: random nodes of a DHT layer with their identities, for roles to be hired."""

from __future__ import annotations

from twisted.internet import defer

from bitdust_node.dht.roles import NodesLookup
from bitdust_node.services.base import Service
from bitdust_node.services.entangled_dht import EntangledDhtService


class NodesLookupService(Service):
    name = "nodes_lookup"
    needs_identity = True

    lookup: NodesLookup | None = None

    def start(self) -> defer.Deferred[None]:
        dht = self.need(EntangledDhtService).dht
        assert dht is not None
        me = self.ctx.identity
        self.lookup = NodesLookup(dht, self.ctx.identity_cache, lambda: me.current.idurl if me.current else None)
        return defer.succeed(None)

    def stop(self) -> defer.Deferred[None]:
        self.lookup = None
        return defer.succeed(None)
