"""The `identity-propagate/known-servers` list: `host:webport[:tcpport]` entries."""

from __future__ import annotations

import re

import attrs

from bitdust_node.errors import InvalidInput
from bitdust_node.wire.identity_xml import IdUrl

_ENTRY = re.compile(r"([A-Za-z0-9.-]+)(?::(\d{1,5}))?(?::(\d{1,5}))?")


@attrs.frozen
class KnownServer:
    host: str
    web_port: int = 80
    tcp_port: int = 6661

    @property
    def base_url(self) -> str:
        netloc = self.host if self.web_port == 80 else f"{self.host}:{self.web_port}"
        return f"http://{netloc}/"

    def idurl(self, name: str) -> IdUrl:
        return IdUrl(self.host.lower(), self.web_port, name)


def parse_known_servers(raw: str) -> list[KnownServer]:
    servers = []
    for part in raw.replace(";", " ").replace(",", " ").split():
        match = _ENTRY.fullmatch(part)
        if match is None:
            raise InvalidInput(f"known identity server {part!r} is not host:webport[:tcpport]")
        host, web, tcp = match.groups()
        servers.append(KnownServer(host, int(web or 80), int(tcp or 6661)))
    return servers
