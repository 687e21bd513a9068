"""The home router, asked by whichever protocol it answers: UPnP IGD first, then NAT-PMP."""

from __future__ import annotations

from collections.abc import Sequence

from bitdust_node.net.natpmp import NatPmpClient
from bitdust_node.net.upnp import IgdClient, MiniUpnpClient, Port, UpnpError


class FirstAnswering:
    """An IgdClient that discovers through each client in turn and keeps the first that answered."""

    def __init__(self, clients: Sequence[IgdClient] | None = None) -> None:
        self.clients: list[IgdClient] = list(clients) if clients is not None else [MiniUpnpClient(), NatPmpClient()]
        self._chosen: IgdClient | None = None

    @property
    def name(self) -> str:
        return str(getattr(self._chosen, "name", "")) if self._chosen is not None else ""

    def discover(self) -> str:
        reasons = []
        for client in self.clients:
            try:
                lan_ip = client.discover()
            except UpnpError as exc:
                reasons.append(str(exc))
                continue
            self._chosen = client
            return lan_ip
        self._chosen = None
        raise UpnpError("; ".join(reasons) or "no router client")

    def external_ip(self) -> str:
        return self._client().external_ip()

    def add_mapping(self, port: Port, lan_ip: str, description: str, lease: int) -> None:
        self._client().add_mapping(port, lan_ip, description, lease)

    def remove_mapping(self, port: Port) -> None:
        self._client().remove_mapping(port)

    def _client(self) -> IgdClient:
        if self._chosen is None:
            raise UpnpError("no router discovered")
        return self._chosen
