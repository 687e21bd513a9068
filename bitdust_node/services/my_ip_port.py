"""service_my_ip_port (official name): learns my outside IP by STUN through DHT nodes (net/stun_client.py)
and hands it to service_network, which decides what my identity publishes."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from bitdust_node.dht.node import DhtNode
from bitdust_node.fsm import trace
from bitdust_node.net.stun_client import Address, StunCore, StunMachine
from bitdust_node.services.base import Service
from bitdust_node.services.entangled_dht import EntangledDhtService
from bitdust_node.services.network import NetworkService
from bitdust_node.services.udp_datagrams import UdpDatagramsService


class DhtStunServers:
    """STUN servers as official nodes find them: random DHT nodes, each asked `request("stun_port")`."""

    def __init__(self, dht: DhtNode) -> None:
        self.dht = dht

    def find(self) -> defer.Deferred[list[Address]]:
        d = self.dht.random_advertised("stun_port")
        d.addCallback(self._addresses)
        return d

    def _addresses(self, found: list[tuple[Any, Any]]) -> list[Address]:
        servers = []
        for contact, port in found:
            # a peer's answer is a peer's word: a port number or nothing
            if isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536:
                servers.append((contact.host, port))
        return servers


class MyIpPortService(Service):
    name = "my_ip_port"

    core: StunCore | None = None
    _machine: Any = None
    _entry: Any = None

    def start(self) -> defer.Deferred[None]:
        ctx = self.ctx
        external = self.need(NetworkService).external
        port = self.need(UdpDatagramsService).stun_port
        dht = self.need(EntangledDhtService).dht
        assert port is not None and dht is not None
        self.core = StunCore(DhtStunServers(dht), port, ctx.reactor, on_learned=lambda ip: external.learned("stun", ip))
        self._machine = machine = StunMachine(self.core)
        self._entry = ctx.registry.register("stun_client", "AT_STARTUP")
        trace(machine, self._entry)
        self._undo = [port.listen_replies(machine.reply), external.on_local_change(machine.relearn)]
        machine.start()
        return defer.succeed(None)

    def stop(self) -> defer.Deferred[None]:
        for undo in self._undo:
            undo()
        if self._machine is not None:
            self._machine.stop()
        if self._entry is not None:
            self._entry.unregister()
        self._machine = self._entry = None
        return defer.succeed(None)

    def stun_state(self) -> str:
        return self._entry.state if self._entry is not None else "STOPPED"

    def status(self) -> dict[str, object]:
        core = self.core
        if core is None:
            return {}
        return {"stun_state": self.stun_state(), "stun_learned": core.learned}
