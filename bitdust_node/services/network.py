"""service_network: the root of the graph; knows the node's listen address and local addresses."""

from __future__ import annotations

from twisted.internet import defer

from bitdust_node.net.addresses import local_addresses, peer_facing_address
from bitdust_node.services.base import Service


class NetworkService(Service):
    name = "network"
    addresses: list[str]

    def start(self) -> defer.Deferred[None]:
        self.addresses = local_addresses()
        return defer.succeed(None)

    def status(self) -> dict[str, object]:
        return {
            "bind_address": self.ctx.bind_address,
            "local_addresses": list(self.addresses),
            "external_address": self.external_address(),
        }

    def external_address(self) -> str:
        """The address peers should use: the bind address, or the first non-loopback one."""
        return peer_facing_address(self.ctx.bind_address, self.addresses)
