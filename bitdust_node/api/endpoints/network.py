"""REST shapes of this node's outside address: what peers reach it at, how that was learned, and
whether a role that peers must reach runs behind NAT with no port forwarded."""

from __future__ import annotations

from typing import Any

from bitdust_node.api.routes import ApiContext
from bitdust_node.net.stun_client import StunCore
from bitdust_node.net.upnp import UpnpCore
from bitdust_node.services.my_ip_port import MyIpPortService
from bitdust_node.services.network import NetworkService

STUN_IGNORED = ("malformed", "unasked", "not_asked_address", "repeated", "disagreeing")


def _stun(service: MyIpPortService | None, state: str | None) -> dict[str, Any]:
    core: StunCore | None = service.core if service is not None else None
    if core is None:
        return {"state": state or "OFF"}
    last = core.last_round
    return {
        "state": service.stun_state() if service is not None else "OFF",
        "learned": core.learned,
        "learned_at": core.learned_at,
        "rounds": core.rounds,
        "last_round": None if last is None else {
            "at": last.at,
            "asked": last.asked,
            "answered": last.answered,
            "learned": last.learned,
            "votes": dict(last.votes),
        },
        "ignored": {why: core.ignored[why] for why in STUN_IGNORED},
    }


def _upnp(network: NetworkService, enabled: bool) -> dict[str, Any]:
    core: UpnpCore | None = network.upnp if enabled else None
    result: dict[str, Any] = {"enabled": enabled, "state": network.upnp_state()}
    if core is not None:
        mapping = core.mapping
        result.update({
            "external_ip": mapping.external_ip if mapping else None,
            "mapped_ports": [f"{protocol} {number}" for number, protocol in mapping.ports] if mapping else [],
            "lan_ip": mapping.lan_ip if mapping else None,
            "via": mapping.via if mapping else None,
            "mapped_at": core.mapped_at if mapping else None,
            "error": core.error,
        })
    return result


def outside_address(api: ApiContext) -> dict[str, Any] | None:
    """The `external` object of /network/status/v1; None while service_network is not ON."""
    network = api.graph.service("network")
    if not isinstance(network, NetworkService):
        return None
    external = network.external
    current = external.current
    reached = external.reached
    stun_service = api.graph.service("my_ip_port")
    return {
        "address": current.address,
        "source": current.source,
        "learned_at": current.since,
        "local_address": external.local_address(),
        "setting": external.override,
        "behind_nat": external.behind_nat(),
        "reached": reached is not None,
        "reached_from": reached.peer if reached else None,
        "reached_at": reached.at if reached else None,
        "port_forwarded": external.port_forwarded(),
        "stun": _stun(stun_service if isinstance(stun_service, MyIpPortService) else None,
                      api.graph.state_of("my_ip_port")),
        "upnp": _upnp(network, bool(api.ctx.settings.get("services/network/upnp-enabled"))),
    }


def _role_ports(api: ApiContext, name: str) -> str | None:
    """The ports peers must reach for a core role this node runs, or None for a role that needs none."""
    get = api.ctx.settings.get
    if name == "identity_server":
        return f"TCP {get('services/identity-server/web-port')} and {get('services/identity-server/tcp-port')}"
    if name in ("proxy_server", "supplier"):
        return f"TCP {get('services/tcp-connections/tcp-port')}"
    if name == "entangled_dht" and str(get("services/entangled-dht/known-nodes")).strip().lower() in ("genesis",
                                                                                                    "root"):
        return f"UDP {get('services/entangled-dht/udp-port')} and {get('services/udp-datagrams/udp-port')}"
    return None


def nat_warning(api: ApiContext, name: str) -> str | None:
    """Why a core role may be out of peers' reach: behind NAT with no forwarded port known."""
    ports = _role_ports(api, name)
    network = api.graph.service("network")
    if ports is None or not isinstance(network, NetworkService) or api.graph.state(name) != "ON":
        return None
    external = network.external
    if not external.behind_nat() or external.port_forwarded():
        return None
    return (
        f"runs behind NAT: peers see this host at {external.address}, it has {external.local_address()}; no peer"
        f" has reached it from outside yet and UPnP maps nothing: forward {ports} on the router to"
        f" {external.local_address()}, or set services/network/upnp-enabled true"
    )
