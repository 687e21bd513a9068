"""Asking a home router (UPnP IGD through the `miniupnpc` library, or NAT-PMP) to forward my ports to me: the
peer-to-peer TCP port peers reach me on, and the DHT's UDP port that lets peers find me.

The library's calls block (SSDP discovery waits for answers), so every one runs in a worker thread;
the machine decides. The mapping has a lease and is renewed at half of it; stopping removes it.

States: AT_STARTUP -> MAPPING (holds the thread's Deferred) -> MAPPED (holds the renewal timer) ->
MAPPING ...; MAPPING -> WAITING (holds the retry timer) when the router refused or none answered;
MAPPING/MAPPED -> UNMAPPING (the removal under way) -> STOPPED.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import attrs
from automat import TypeMachineBuilder
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from bitdust_node.net.clock import DelayedCall, TimeSource

log = Logger()
T = TypeVar("T")
# (port number, "TCP" or "UDP")
Port = tuple[int, str]
Runner = Callable[[Callable[[], Any]], defer.Deferred[Any]]

LEASE_SECONDS = 3600
FIRST_RETRY = 30.0
MAX_RETRY = 1800.0
DESCRIPTION = "bitdust-node"
DISCOVER_MS = 2000


class UpnpError(Exception):
    """The router said no, or no router answered."""


class IgdClient(Protocol):
    """A UPnP Internet Gateway Device, by blocking calls (run in a worker thread)."""

    def discover(self) -> str:
        """Find the router; my LAN address as it will see me."""

    def external_ip(self) -> str: ...

    def add_mapping(self, port: Port, lan_ip: str, description: str, lease: int) -> None: ...

    def remove_mapping(self, port: Port) -> None: ...


class MiniUpnpClient:
    """IgdClient over the `miniupnpc` library (PyPI); each mapping's outside port is its inside port."""

    name = "UPnP"

    def __init__(self, discover_ms: int = DISCOVER_MS) -> None:
        self.discover_ms = discover_ms
        self._igd: Any = None

    def discover(self) -> str:
        import miniupnpc  # loaded only by a node that asks for UPnP

        igd = miniupnpc.UPnP()
        igd.discoverdelay = self.discover_ms
        if igd.discover() == 0:
            raise UpnpError("no UPnP router answered")
        try:
            igd.selectigd()
        except Exception as exc:  # miniupnpc raises plain Exception
            raise UpnpError(f"no usable UPnP router: {exc}") from None
        self._igd = igd
        return str(igd.lanaddr)

    def external_ip(self) -> str:
        return str(self._call("externalipaddress"))

    def add_mapping(self, port: Port, lan_ip: str, description: str, lease: int) -> None:
        number, protocol = port
        self._call("addportmapping", number, protocol, lan_ip, number, description, "", lease)

    def remove_mapping(self, port: Port) -> None:
        number, protocol = port
        self._call("deleteportmapping", number, protocol)

    def _call(self, name: str, *args: Any) -> Any:
        if self._igd is None:
            raise UpnpError("no UPnP router discovered")
        try:
            return getattr(self._igd, name)(*args)
        except Exception as exc:
            raise UpnpError(f"{name}: {exc}") from None


@attrs.frozen
class Mapping:
    external_ip: str
    lan_ip: str
    ports: tuple[Port, ...]
    # which protocol the router answered: UPnP or NAT-PMP
    via: str = ""


@attrs.define
class UpnpCore:
    client: IgdClient
    run: Runner
    clock: TimeSource
    ports: tuple[Port, ...]
    on_mapped: Callable[[Mapping], object]
    on_lost: Callable[[], object]
    # told after every attempt, mapped or not (the node waits for the first before it announces itself)
    on_attempt: Callable[[], object] = lambda: None
    lease: int = LEASE_SECONDS
    first_retry: float = FIRST_RETRY
    max_retry: float = MAX_RETRY
    retry_delay: float = FIRST_RETRY
    mapping: Mapping | None = None
    mapped_at: float | None = None
    error: str = ""
    stop_waiters: list[defer.Deferred[None]] = attrs.field(factory=list)

    def map_now(self) -> Mapping:
        """In the worker thread: find the router, forward my ports, ask my outside IP."""
        lan_ip = self.client.discover()
        for port in self.ports:
            self.client.add_mapping(port, lan_ip, DESCRIPTION, self.lease)
        return Mapping(self.client.external_ip(), lan_ip, self.ports, str(getattr(self.client, "name", "")))

    def unmap_now(self) -> None:
        """In the worker thread: remove every mapping, even when one removal fails."""
        errors = []
        for port in self.ports:
            try:
                self.client.remove_mapping(port)
            except UpnpError as exc:
                errors.append(str(exc))
        if errors:
            raise UpnpError("; ".join(errors))

    def wait_stopped(self) -> defer.Deferred[None]:
        d: defer.Deferred[None] = defer.Deferred()
        self.stop_waiters.append(d)
        return d

    def finish_stopping(self) -> None:
        waiters, self.stop_waiters = self.stop_waiters, []
        for d in waiters:
            d.callback(None)


class UpnpInputs(Protocol):
    def start(self) -> None:
        "Ask the router now."

    def mapped(self, mapping: Mapping) -> None:
        "The router forwards my port."

    def failed(self, reason: str) -> None:
        "No router answered, or it refused."

    def renew(self) -> None:
        "Half the lease passed, or the retry delay: ask again."

    def unmapped(self) -> None:
        "The mapping is removed (or could not be)."

    def stop(self) -> defer.Deferred[None]:
        "Remove the mapping; fires when done."


def _map(inputs: UpnpInputs, core: UpnpCore) -> defer.Deferred[Any]:
    working = core.run(core.map_now)

    def failed(failure: Failure) -> None:
        inputs.failed(failure.getErrorMessage() if failure.check(UpnpError) else repr(failure.value))

    working.addCallbacks(inputs.mapped, failed)
    return working


def _renewal(inputs: UpnpInputs, core: UpnpCore, mapping: Mapping) -> DelayedCall:
    return core.clock.callLater(core.lease / 2, inputs.renew)


def _retry(inputs: UpnpInputs, core: UpnpCore, reason: str) -> DelayedCall:
    delay = core.retry_delay
    core.retry_delay = min(core.retry_delay * 2, core.max_retry)
    log.info("UPnP: {why}; next try in {delay} s", why=reason, delay=delay)
    return core.clock.callLater(delay, inputs.renew)


def _unmap(inputs: UpnpInputs, core: UpnpCore, after: defer.Deferred[Any]) -> None:
    def remove(_: object) -> defer.Deferred[Any]:
        return core.run(core.unmap_now)

    def done(result: object) -> None:
        if isinstance(result, Failure):
            log.info("UPnP: removing the mappings failed: {why}", why=result.getErrorMessage())
        inputs.unmapped()

    after.addBoth(remove).addBoth(done)


builder = TypeMachineBuilder(UpnpInputs, UpnpCore)
AT_STARTUP = builder.state("AT_STARTUP")
MAPPING = builder.state("MAPPING", _map)
MAPPED = builder.state("MAPPED", _renewal)
WAITING = builder.state("WAITING", _retry)
UNMAPPING = builder.state("UNMAPPING")
STOPPED = builder.state("STOPPED")

AT_STARTUP.upon(UpnpInputs.start).to(MAPPING).returns(None)
MAPPING.upon(UpnpInputs.renew).loop().returns(None)


@MAPPING.upon(UpnpInputs.mapped).to(MAPPED)
def _mapped(inputs: UpnpInputs, core: UpnpCore, working: defer.Deferred[Any], mapping: Mapping) -> None:
    if core.mapping != mapping:
        ports = ", ".join(f"{protocol} {number}" for number, protocol in mapping.ports)
        log.info("{via}: the router forwards {ports} of {ip} to {lan}", ip=mapping.external_ip, lan=mapping.lan_ip,
                 via=mapping.via or "UPnP", ports=ports)
    core.mapping, core.mapped_at, core.error = mapping, core.clock.seconds(), ""
    core.retry_delay = core.first_retry
    core.on_mapped(mapping)
    core.on_attempt()


@MAPPING.upon(UpnpInputs.failed).to(WAITING)
def _failed(inputs: UpnpInputs, core: UpnpCore, working: defer.Deferred[Any], reason: str) -> None:
    core.error = reason
    if core.mapping is not None:
        core.mapping = None
        core.on_lost()
    core.on_attempt()


@MAPPED.upon(UpnpInputs.renew).to(MAPPING)
@WAITING.upon(UpnpInputs.renew).to(MAPPING)
def _renew(inputs: UpnpInputs, core: UpnpCore, timer: DelayedCall) -> None:
    if timer.active():
        timer.cancel()


@MAPPING.upon(UpnpInputs.stop).to(UNMAPPING)
def _stop_mapping(inputs: UpnpInputs, core: UpnpCore, working: defer.Deferred[Any]) -> defer.Deferred[None]:
    # a thread cannot be interrupted: the mapping it may make is removed once it is done
    waited = core.wait_stopped()
    _unmap(inputs, core, working)
    return waited


@MAPPED.upon(UpnpInputs.stop).to(UNMAPPING)
def _stop_mapped(inputs: UpnpInputs, core: UpnpCore, timer: DelayedCall) -> defer.Deferred[None]:
    if timer.active():
        timer.cancel()
    waited = core.wait_stopped()
    _unmap(inputs, core, defer.succeed(None))
    return waited


@WAITING.upon(UpnpInputs.stop).to(STOPPED)
def _stop_waiting(inputs: UpnpInputs, core: UpnpCore, timer: DelayedCall) -> defer.Deferred[None]:
    if timer.active():
        timer.cancel()
    return defer.succeed(None)


@AT_STARTUP.upon(UpnpInputs.stop).to(STOPPED)
@STOPPED.upon(UpnpInputs.stop).loop()
def _stopped(inputs: UpnpInputs, core: UpnpCore) -> defer.Deferred[None]:
    return defer.succeed(None)


@UNMAPPING.upon(UpnpInputs.stop).loop()
def _still_stopping(inputs: UpnpInputs, core: UpnpCore) -> defer.Deferred[None]:
    return core.wait_stopped()


@UNMAPPING.upon(UpnpInputs.unmapped).to(STOPPED)
def _unmapped(inputs: UpnpInputs, core: UpnpCore) -> None:
    if core.mapping is not None:
        core.mapping = None
        core.on_lost()
    core.finish_stopping()


# the thread that was mapping when stop came reports late: the removal follows it anyway
UNMAPPING.upon(UpnpInputs.mapped).loop().returns(None)
UNMAPPING.upon(UpnpInputs.failed).loop().returns(None)
for _input in (UpnpInputs.mapped, UpnpInputs.failed, UpnpInputs.renew, UpnpInputs.unmapped):
    STOPPED.upon(_input).loop().returns(None)

UpnpMachine = builder.build()
