"""My TCP connection to my router, as the proxy_receiver machine sees it (its RouterLine): a keep-alive on it,
and a word when the last open one closes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import attrs

from bitdust_node.proxy.choice import tcp_contact
from bitdust_node.transport.connection import Address
from bitdust_node.transport.tcp import parse_tcp_contact
from bitdust_node.wire.identity_xml import Identity


class RouterConnection(Protocol):
    @property
    def address(self) -> Address | None: ...

    @property
    def bytes_in(self) -> int: ...

    @property
    def bytes_out(self) -> int: ...

    @property
    def usable(self) -> bool: ...


class RouterLink(Protocol):
    """What the client asks of the TCP transport about its router's connection."""

    def keep_alive(self, address: Address) -> None: ...

    def connection_to(self, address: Address) -> RouterConnection | None: ...

    def watch_closed(self, watcher: Callable[[RouterConnection], None]) -> Callable[[], None]: ...


def router_address(router: Identity) -> Address | None:
    contact = tcp_contact(router)
    return parse_tcp_contact(contact) if contact is not None else None


@attrs.define
class TcpRouterLine:
    """My TCP connection to the router (RouterLine of the receiver)."""

    link: RouterLink

    def keep_alive(self, router: Identity) -> bool:
        address = router_address(router)
        connection = self.link.connection_to(address) if address is not None else None
        if address is None or connection is None or not connection.usable:
            return False
        self.link.keep_alive(address)
        return True

    def watch_closed(self, router: Identity, closed: Callable[[], None]) -> Callable[[], None]:
        address = router_address(router)

        def watcher(connection: RouterConnection) -> None:
            if address is not None and connection.address == address:
                other = self.link.connection_to(address)
                if other is None or not other.usable:
                    closed()

        return self.link.watch_closed(watcher)
