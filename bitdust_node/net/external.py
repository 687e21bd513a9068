"""This node's outside address: the one address peers use to reach it, and how it was learned.

Four sources, the first that has an answer wins: `services/network/external-address` (the user said
so), STUN through DHT nodes (what peers see: `stun_client.py`), a home router's UPnP answer
(`upnp.py`), and last this machine's own address. A change is told to every listener, so the
identity's contacts follow it; a peer connecting from outside is the proof that the address works.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Literal

import attrs
from twisted.logger import Logger

from bitdust_node.net.addresses import peer_facing_address
from bitdust_node.net.clock import TimeSource

log = Logger()

Source = Literal["setting", "stun", "upnp", "local"]
Listener = Callable[["Outside"], object]
LocalListener = Callable[[], object]


@attrs.frozen
class Outside:
    """The published outside address, where it came from and since when (the clock's seconds)."""

    address: str
    source: Source
    since: float


@attrs.frozen
class Reached:
    """A peer from outside connected to my listening port: the address works."""

    peer: str
    at: float


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@attrs.define
class ExternalAddress:
    """Chooses the address my identity publishes and tells listeners when it changes."""

    clock: TimeSource
    bind_address: str
    local_addresses: list[str]
    override: str = ""
    by_stun: str | None = None
    by_stun_at: float | None = None
    by_upnp: str | None = None
    by_upnp_at: float | None = None
    # the router forwards my port for me (UPnP said yes)
    upnp_mapped: bool = False
    reached: Reached | None = None
    _current: Outside | None = attrs.field(default=None, init=False)
    _listeners: list[Listener] = attrs.field(factory=list, init=False)
    _local_listeners: list[LocalListener] = attrs.field(factory=list, init=False)

    def __attrs_post_init__(self) -> None:
        self._current = self._choose()

    # -- what it is

    @property
    def current(self) -> Outside:
        assert self._current is not None
        return self._current

    @property
    def address(self) -> str:
        return self.current.address

    def local_address(self) -> str:
        return peer_facing_address(self.bind_address, self.local_addresses)

    def behind_nat(self) -> bool:
        """Whether peers reach me at an IP this machine does not have (a host name: unknown, so no)."""
        outside = _ip(self.address)
        return outside is not None and not outside.is_loopback and str(outside) not in self.local_addresses

    def port_forwarded(self) -> bool:
        """Some proof that peers get through: UPnP mapped my port, or a peer from outside connected."""
        return self.upnp_mapped or self.reached is not None

    # -- what changes it

    def set_override(self, value: str) -> None:
        self.override = value.strip()
        self._update()

    def learned(self, source: Literal["stun", "upnp"], ip: str) -> None:
        """An address learned by STUN or UPnP; one that peers could not use is refused."""
        if not self._usable(ip):
            log.info("ignoring {source} address {ip}: peers elsewhere cannot use it", source=source, ip=ip)
            return
        now = self.clock.seconds()
        if source == "stun":
            self.by_stun, self.by_stun_at = ip, now
        else:
            self.by_upnp, self.by_upnp_at = ip, now
        self._update()

    def forgot_upnp(self) -> None:
        self.by_upnp = self.by_upnp_at = None
        self.upnp_mapped = False
        self._update()

    def local_changed(self, addresses: list[str]) -> None:
        """This machine's addresses changed: what STUN learned may be stale, so listeners learn again."""
        if addresses == self.local_addresses:
            return
        log.info("local addresses changed: {old} -> {new}", old=self.local_addresses, new=addresses)
        self.local_addresses = list(addresses)
        self._update()
        for listener in list(self._local_listeners):
            listener()

    def peer_connected(self, host: str) -> None:
        """A peer connected to my listening port from `host`; one from outside proves the address."""
        ip = _ip(host)
        if ip is None or ip.is_loopback or host in self.local_addresses:
            return
        if self.reached is None:
            log.info("a peer from outside ({peer}) reached me at {address}", peer=host, address=self.address)
        self.reached = Reached(host, self.clock.seconds())

    # -- listeners

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(outside)` after every change of the address; returns the unsubscriber."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def on_local_change(self, listener: LocalListener) -> Callable[[], None]:
        self._local_listeners.append(listener)
        return lambda: self._local_listeners.remove(listener) if listener in self._local_listeners else None

    # -- inside

    def _usable(self, ip: str) -> bool:
        parsed = _ip(ip)
        if parsed is None or parsed.is_unspecified or parsed.is_multicast:
            return False
        # peers on this machine see me at loopback; only a node bound there may publish it
        bind = _ip(self.bind_address)
        return not parsed.is_loopback or (bind is not None and bind.is_loopback)

    def _choose(self) -> Outside:
        now = self.clock.seconds()
        if self.override:
            return Outside(self.override, "setting", now)
        if self.by_stun is not None:
            return Outside(self.by_stun, "stun", self.by_stun_at or now)
        if self.by_upnp is not None:
            return Outside(self.by_upnp, "upnp", self.by_upnp_at or now)
        return Outside(self.local_address(), "local", now)

    def _update(self) -> None:
        old, new = self._current, self._choose()
        if old is not None and (old.address, old.source) == (new.address, new.source):
            return
        self._current = new
        if old is not None and old.address == new.address:
            return
        # a new address is unproven until a peer reaches it
        self.reached = None
        log.info("my outside address is {address} ({source})", address=new.address, source=new.source)
        for listener in list(self._listeners):
            try:
                listener(new)
            except Exception:
                log.failure("outside address listener {who} failed", who=getattr(listener, "__qualname__", listener))
