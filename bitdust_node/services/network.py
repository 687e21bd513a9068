"""service_network: the root of the graph; knows the node's listen address and local addresses."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from bitdust_node.net.addresses import local_addresses, peer_facing_address
from bitdust_node.services.base import Service
from bitdust_node.sizes import size_to_bytes
from bitdust_node.transport.budget import ReceiveBudget

# the node-wide receive budget every holder of peers' unfinished or unverified bytes takes from
BUDGET_KEY = "services/network/receive-budget"


class NetworkService(Service):
    name = "network"
    addresses: list[str]
    budget: ReceiveBudget

    def start(self) -> defer.Deferred[None]:
        self.addresses = local_addresses()
        self.budget = ReceiveBudget(size_to_bytes(str(self.ctx.settings.get(BUDGET_KEY))))
        self._unsubscribe_budget = self.ctx.settings.subscribe(BUDGET_KEY, self._budget_changed)
        return defer.succeed(None)

    def stop(self) -> defer.Deferred[None]:
        self._unsubscribe_budget()
        return defer.succeed(None)

    def _budget_changed(self, key: str, old: Any, new: Any) -> None:
        self.budget.resize(size_to_bytes(str(new)))

    def status(self) -> dict[str, object]:
        return {
            "bind_address": self.ctx.bind_address,
            "local_addresses": list(self.addresses),
            "external_address": self.external_address(),
            "receive_budget": self.budget.status(),
        }

    def external_address(self) -> str:
        """The address peers should use: the bind address, or the first non-loopback one."""
        return peer_facing_address(self.ctx.bind_address, self.addresses)
