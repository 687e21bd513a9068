"""Network: addresses, DHT layers, identity servers and whether they answer, suppliers and their last answer."""

from __future__ import annotations

from typing import Any

from twisted.web.template import Tag, tags

from bitdust_node.errors import InvalidInput
from bitdust_node.gui.panels.base import (
    Content,
    View,
    extra_fields,
    facts,
    note,
    panel,
    short_id,
    state_badge,
    table,
    unavailable,
    when,
)
from bitdust_node.identity.known_servers import parse_known_servers

LAYER_NAMES = {0: "base", 1: "identity servers", 2: "proxy routers", 3: "suppliers"}
# fields of /network/status/v1 drawn elsewhere
STATUS_DRAWN = {"dht", "proxy", "identity_contacts", "idurl", "global_id", "local_addresses"}


async def identity_server_urls(view: View) -> list[str]:
    """The index URLs of the servers in known-servers and of those my identity names."""
    urls: list[str] = []
    setting = await view.get("/config/get/v1", key="services/identity-propagate/known-servers")
    if setting.ok and setting.result:
        try:
            urls += [s.base_url for s in parse_known_servers(str(setting.result[0]["value"]))]
        except InvalidInput:
            pass
    me = await view.get("/identity/get/v1")
    if me.ok:
        for source in me.result.get("sources") or []:
            urls.append(source.rsplit("/", 1)[0] + "/")
    return list(dict.fromkeys(urls))


@panel("addresses", "This node on the network")
async def addresses(view: View) -> Content:
    status = await view.get("/network/status/v1", dht="1")
    if not status.ok:
        return unavailable(status, "network status")
    row: dict[str, Any] = status.result
    shown = [("local addresses", ", ".join(row.get("local_addresses") or [])),
             ("identity contacts", ", ".join(row.get("identity_contacts") or []))]
    # whatever else the status says (the outside address and how it was learned, where the node has it)
    return facts(extra_fields(row, STATUS_DRAWN) + shown)


@panel("dht", "DHT layers")
async def dht(view: View) -> Content:
    status = await view.get("/network/status/v1", dht="1")
    layers = ((status.result or {}).get("dht") or {}).get("layers") if status.ok else None
    if not layers:
        return note("The DHT is not running.")
    # a layer this node neither joined nor heard of says nothing
    used = [layer for layer in layers
            if layer.get("active", True) or layer.get("contacts") or layer.get("packets_received")]
    rows: list[list[Content]] = [[f"{layer['layer_id']} ({LAYER_NAMES.get(layer['layer_id'], 'other')})",
             "yes" if layer.get("active", True) else "no", str(layer.get("contacts", 0)),
             str(layer.get("data_store_items", 0)), str(layer.get("packets_received", 0)),
             str(layer.get("packets_sent", 0))] for layer in used]
    headers = ["layer", "joined", "contacts", "values held", "packets in", "packets out"]
    return table(f"Contacts per DHT layer ({len(layers) - len(used)} more layers unused)", headers, rows)


@panel("idservers", "Identity servers")
async def idservers(view: View) -> Content:
    urls = await identity_server_urls(view)
    if not urls:
        return note("No identity server is known: set services/identity-propagate/known-servers.")
    view.probes.refresh(urls)
    rows: list[list[Content]] = []
    for url in urls:
        result = view.probes.results.get(url)
        if result is None:
            rows.append([url, state_badge("checking"), ""])
        else:
            rows.append([url, state_badge("answers" if result.answered else "silent"),
                         f"{result.detail} at {when(result.when)}"])
    return table("Known identity servers and whether they answer", ["server", "answers", "last check"], rows)


@panel("suppliers", "Suppliers")
async def suppliers(view: View) -> Content:
    answer = await view.get("/supplier/list/v1")
    if answer.status == 503:
        return note("This node stores nothing on suppliers: service_customer is not ON.")
    if not answer.ok:
        return unavailable(answer, "suppliers")
    rows: list[list[Content]] = []
    for row in answer.result:
        # per-supplier check results (last answer, pieces held, failed checks) where the node reports them
        extra: list[Tag] = [tags.span(f"{k}: {v}", class_="check") for k, v in
                            extra_fields(row, {"position", "idurl", "global_id", "supplier_state", "contact_state",
                                               "connected"})]
        rows.append([str(row.get("position")), short_id(row.get("global_id") or row.get("idurl") or "(hiring)"),
                     state_badge(row.get("supplier_state", "")), when(row.get("connected")), extra])
    return table("My suppliers by position", ["position", "supplier", "state", "since", "checks"], rows)

