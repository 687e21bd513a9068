"""REST endpoints of the peer-to-peer half: ping a user, a user's status, the open connections."""

from __future__ import annotations

from typing import Any

from bitdust_node.api.params import number, whole
from bitdust_node.api.routes import ApiContext, ApiRequest, WithMessage, endpoint
from bitdust_node.errors import InvalidInput
from bitdust_node.identity.known_servers import parse_known_servers
from bitdust_node.identity.naming import resolve_user
from bitdust_node.services.nodes_lookup import NodesLookupService
from bitdust_node.services.p2p_hookups import P2pHookupsService
from bitdust_node.services.tcp_connections import TcpConnectionsService
from bitdust_node.wire.identity_xml import parse_idurl

HOOKUPS = "service_p2p_hookups"
# a peer heard from this recently counts as online
ONLINE_FOR = 300.0


async def user_idurl(api: ApiContext, req: ApiRequest) -> str:
    """The IDURL of the user the request names in `id` (or `idurl`, `global_id`, `recipient_id`)."""
    source = {**req.args, **req.body}
    named = next((source[k] for k in ("id", "idurl", "global_id", "recipient_id") if source.get(k)), None)
    if not isinstance(named, str):
        raise InvalidInput("name the user with id: a nickname, global id or IDURL")
    servers = parse_known_servers(str(api.ctx.settings.get("services/identity-propagate/known-servers")))
    try:
        return await resolve_user(named, api.ctx.identity_cache, servers)
    except ValueError as err:  # a malformed IDURL
        raise InvalidInput(str(err)) from None


@endpoint("GET", "/user/ping/v1", "Send my identity to a user and wait for its Ack", service=HOOKUPS,
          params=("id", "timeout"))
async def user_ping(api: ApiContext, req: ApiRequest) -> WithMessage:
    hookups = api.running(P2pHookupsService).hookups
    assert hookups is not None
    idurl = await user_idurl(api, req)
    done = await hookups.ping(idurl, timeout=number(req, "timeout", 20.0, 120.0, least=0.1))
    return WithMessage(
        {"idurl": done.idurl, "global_id": done.global_id, "round_trip_ms": round(done.round_trip * 1000, 3)},
        [f"signed{{Ack({done.packet_id})}}"],
    )


@endpoint("GET", "/user/status/v1", "Is a user online, as far as this node knows", service=HOOKUPS, params=("id",))
async def user_status(api: ApiContext, req: ApiRequest) -> dict[str, Any]:
    hookups = api.running(P2pHookupsService).hookups
    assert hookups is not None
    idurl = await user_idurl(api, req)
    heard = hookups.last_heard.get(idurl)
    online = heard is not None and api.ctx.reactor.seconds() - heard < ONLINE_FOR
    return {
        "contact_state": "CONNECTED" if online else "OFFLINE",
        "global_id": parse_idurl(idurl).global_id,
        "idurl": idurl,
    }


@endpoint("GET", "/nodes/random/v1", "Random nodes of a DHT layer, with their identities",
          service="service_nodes_lookup", params=("layer_id", "count"))
async def nodes_random(api: ApiContext, req: ApiRequest) -> list[dict[str, Any]]:
    lookup = api.running(NodesLookupService).lookup
    assert lookup is not None
    raw_layer = req.args.get("layer_id", "0")
    if not raw_layer.isdigit() or int(raw_layer) > 9:
        raise InvalidInput("layer_id must be a DHT layer, 0 to 9")
    layer_id, count = int(raw_layer), whole(req, "count", 1, 50, least=1)
    found = await lookup.random_nodes(layer_id, count)
    return [{"idurl": i.sources[0], "global_id": i.global_id, "contacts": list(i.contacts)} for i in found]


@endpoint("GET", "/connection/list/v1", "Open peer-to-peer connections", service="service_tcp_connections")
def connection_list(api: ApiContext, req: ApiRequest) -> list[dict[str, Any]]:
    tcp = api.running(TcpConnectionsService).tcp
    assert tcp is not None
    rows = tcp.status()
    for row in rows:
        try:
            row["global_id"] = parse_idurl(row["idurl"]).global_id if row["idurl"] else ""
        except ValueError:
            row["global_id"] = ""
    return rows


