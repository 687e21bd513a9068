"""service_network: the root of the graph; knows the node's listen address, its local addresses and its
outside address (net/external.py), and asks the home router to forward my port when UPnP is on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from twisted.internet import defer, threads
from twisted.internet.task import LoopingCall

from bitdust_node.fsm import trace
from bitdust_node.net.addresses import local_addresses
from bitdust_node.net.budget import ReceiveBudget
from bitdust_node.net.external import ExternalAddress
from bitdust_node.services.base import Service
from bitdust_node.sizes import size_to_bytes

if TYPE_CHECKING:
    from bitdust_node.net.upnp import Mapping, UpnpCore

# the node-wide receive budget every holder of peers' unfinished or unverified bytes takes from
BUDGET_KEY = "services/network/receive-budget"

# how often the local addresses are compared with the last seen (as official nodes do)
LOCAL_CHECK_INTERVAL = 20.0
# a router that does not answer must not hold the node's stop for long
UPNP_STOP_TIMEOUT = 10.0
# the ports are mapped before the DHT announces me: a peer that writes to an unmapped port leaves a
# stale entry in the router's connection table that blocks the mapping for as long as it keeps writing
UPNP_START_WAIT = 10.0


class NetworkService(Service):
    name = "network"
    # applied by the service itself, without a restart of the whole node
    live_settings: ClassVar[frozenset[str]] = frozenset({"external-address", "upnp-enabled", "receive-budget"})

    addresses: list[str]
    budget: ReceiveBudget
    external: ExternalAddress
    upnp: UpnpCore | None = None
    _upnp_machine: Any = None
    _upnp_entry: Any = None

    def start(self) -> defer.Deferred[None]:
        ctx = self.ctx
        self.addresses = local_addresses()
        self.budget = ReceiveBudget(size_to_bytes(str(ctx.settings.get(BUDGET_KEY))))
        self.external = ExternalAddress(
            ctx.reactor, ctx.bind_address, list(self.addresses), override=str(self.setting("external-address")),
        )
        self._watch = LoopingCall(self._check_local)
        self._watch.clock = ctx.reactor
        self._watch.start(LOCAL_CHECK_INTERVAL, now=False)
        prefix = self.config_prefix()
        self._unsubscribe = [
            ctx.settings.subscribe(f"{prefix}/external-address", self._override_changed),
            ctx.settings.subscribe(f"{prefix}/upnp-enabled", self._upnp_switched),
            ctx.settings.subscribe(BUDGET_KEY, self._budget_changed),
        ]
        if not self.setting("upnp-enabled"):
            return defer.succeed(None)
        first: defer.Deferred[None] = defer.Deferred()
        self._start_upnp(lambda: None if first.called else first.callback(None))
        first.addTimeout(UPNP_START_WAIT, ctx.reactor)
        first.addErrback(lambda _failure: self.log.info("UPnP: no answer yet; starting without a mapping"))
        return first

    def stop(self) -> defer.Deferred[None]:
        if self._watch.running:
            self._watch.stop()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        return self._stop_upnp()

    def external_address(self) -> str:
        """The address peers should use: the setting, else what STUN or UPnP learned, else mine."""
        return self.external.address

    def _check_local(self) -> None:
        found = local_addresses()
        if found != self.addresses:
            self.addresses = found
            self.external.local_changed(list(found))

    def _override_changed(self, key: str, old: Any, new: Any) -> None:
        self.external.set_override(str(new))

    def _upnp_switched(self, key: str, old: Any, new: Any) -> None:
        if new:
            self._start_upnp()
        else:
            self._stop_upnp()

    # -- UPnP

    def _start_upnp(self, on_attempt: Any = lambda: None) -> None:
        if self._upnp_machine is not None:
            return
        # the port mapper's code is imported when UPnP is switched on: most nodes never load it
        from bitdust_node.net.gateways import FirstAnswering
        from bitdust_node.net.upnp import UpnpCore, UpnpMachine

        reactor = self.ctx.reactor

        def in_thread(work: Any) -> defer.Deferred[Any]:
            return threads.deferToThreadPool(reactor, reactor.getThreadPool(), work)

        def mapped(mapping: Mapping) -> None:
            self.external.upnp_mapped = True
            self.external.learned("upnp", mapping.external_ip)

        get = self.ctx.settings.get
        # peers reach me on the TCP port and find me through the DHT's UDP port
        ports = (
            (int(get("services/tcp-connections/tcp-port")), "TCP"),
            (int(get("services/entangled-dht/udp-port")), "UDP"),
        )
        self.upnp = UpnpCore(FirstAnswering(), in_thread, reactor, ports, mapped, self.external.forgot_upnp,
                             on_attempt)
        self._upnp_machine = UpnpMachine(self.upnp)
        self._upnp_entry = self.ctx.registry.register("upnp_port_mapper", "AT_STARTUP")
        trace(self._upnp_machine, self._upnp_entry)
        self._upnp_machine.start()

    def _stop_upnp(self) -> defer.Deferred[None]:
        machine, entry = self._upnp_machine, self._upnp_entry
        self._upnp_machine = self._upnp_entry = None
        if machine is None:
            return defer.succeed(None)
        stopping: defer.Deferred[None] = machine.stop()
        stopping.addTimeout(UPNP_STOP_TIMEOUT, self.ctx.reactor)
        stopping.addErrback(lambda failure: self.log.info("UPnP: the router did not confirm the removal in time"))

        def done(_: object) -> None:
            entry.unregister()
            self.external.forgot_upnp()

        return stopping.addBoth(done)

    def upnp_state(self) -> str:
        return self._upnp_entry.state if self._upnp_entry is not None else "OFF"

    def _budget_changed(self, key: str, old: Any, new: Any) -> None:
        self.budget.resize(size_to_bytes(str(new)))

    def status(self) -> dict[str, object]:
        return {
            "bind_address": self.ctx.bind_address,
            "local_addresses": list(self.addresses),
            "external_address": self.external_address(),
            "receive_budget": self.budget.status(),
        }
