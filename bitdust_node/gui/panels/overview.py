"""Overview: who this node is, what runs and why the rest does not, who it serves, what is wrong."""

from __future__ import annotations

from typing import Any

from twisted.web.template import Tag, tags

from bitdust_node.gui.panels.base import (
    Content,
    View,
    facts,
    note,
    panel,
    short_id,
    size,
    state_badge,
    table,
    unavailable,
)
from bitdust_node.gui.panels.network import identity_server_urls

# a service in one of these states is on its way, not a problem
SETTLING = ("ON", "STARTING", "STOPPING")
ROLE_OF_SERVICE = {
    "identity_server": "identity server",
    "proxy_server": "proxy router",
    "supplier": "supplier",
    "customer": "customer",
    "proxy_transport": "routed user",
}


def roles(services: list[dict[str, Any]], dht: dict[str, Any] | None) -> list[str]:
    running = {s["name"].removeprefix("service_") for s in services if s.get("state") == "ON"}
    found = [role for name, role in ROLE_OF_SERVICE.items() if name in running]
    if "entangled_dht" in running:
        found.insert(0, "DHT node")
    return found


@panel("alerts", "Alerts")
async def alerts(view: View) -> Content:
    found: list[Tag] = []
    me = await view.get("/identity/get/v1")
    if not me.ok:
        found.append(tags.li("This node has no identity yet: ", tags.code("bitdust identity create NAME")))
    services = await view.get("/service/list/v1")
    for row in services.result or []:
        # a service waiting on another is explained by that one; without an identity, by the line above
        quiet = row.get("state") == "DEPENDS_OFF" or (row.get("state") == "NOT_INSTALLED" and not me.ok)
        if row.get("enabled") and row.get("state") not in SETTLING and not quiet:
            found.append(tags.li(f"{row['name']} is {row['state']}", f": {row['reason']}" if row.get("reason") else ""))
    servers = await identity_server_urls(view)
    view.probes.refresh(servers)
    for url, result in sorted(view.probes.results.items()):
        if not result.answered and url in servers:
            found.append(tags.li(f"identity server {url} does not answer ({result.detail})"))
    files = await view.get("/file/list/v1")
    for row in files.result or []:
        health = row.get("health")
        if isinstance(health, dict) and health.get("total") and health.get("ok", 0) < health["total"]:
            found.append(tags.li(f"{row['path']} is degraded: {health.get('ok')}/{health['total']} shares healthy"))
    suppliers = await view.get("/supplier/list/v1")
    for row in suppliers.result or []:
        if row.get("supplier_state") != "CONNECTED":
            found.append(tags.li(f"supplier at position {row.get('position')} is {row.get('supplier_state')}"))
    if not found:
        return note("Nothing needs attention.", "good")
    return tags.ul(*found, class_="alerts", role="status")


@panel("identity", "Identity")
async def identity(view: View) -> Content:
    me = await view.get("/identity/get/v1")
    services = await view.get("/service/list/v1")
    status = await view.get("/network/status/v1", dht="1")
    role_names = roles(services.result or [], (status.result or {}).get("dht"))
    if not me.ok:
        return tags.div(unavailable(me, "identity"), facts([("roles", ", ".join(role_names) or "none")]))
    row = me.result
    return facts([
        ("global id", tags.strong(row["global_id"], class_="global-id")),
        ("IDURL", row["idurl"]),
        ("revision", row.get("revision")),
        ("contacts", ", ".join(row.get("contacts") or [])),
        ("roles", ", ".join(role_names) or "none"),
    ])


@panel("services", "Services")
async def services(view: View) -> Content:
    answer = await view.get("/service/list/v1")
    if not answer.ok:
        return unavailable(answer, "services")
    rows = [[tags.code(s["name"]), state_badge(s["state"]), "enabled" if s.get("enabled") else "disabled",
             s.get("reason") or ("" if s["state"] == "ON" else "—")]
            for s in answer.result]
    return table("Every service, its state and why it is not ON", ["service", "state", "switch", "why"], rows)


@panel("connections", "Connections")
async def connections(view: View) -> Content:
    answer = await view.get("/connection/list/v1")
    if not answer.ok:
        return unavailable(answer, "connections")
    rows = [[short_id(c.get("global_id") or c.get("idurl") or ""), c.get("host", ""), c.get("status", ""),
             size(c.get("bytes_received")), size(c.get("bytes_sent"))] for c in answer.result]
    return table("Open peer-to-peer connections", ["peer", "address", "status", "received", "sent"], rows)


@panel("routes", "Routes")
async def routes(view: View) -> Content:
    status = await view.get("/network/status/v1", dht="1")
    proxy = (status.result or {}).get("proxy") if status.ok else None
    if not isinstance(proxy, dict) or not proxy:
        return note("This node is not a proxy router and uses none.")
    if "routes" in proxy:
        rows = [[r.get("idurl", ""), r.get("address", ""), "yes" if r.get("connected") else "no",
                 size(r.get("bytes_in")), size(r.get("bytes_out"))] for r in proxy["routes"]]
        limit = proxy.get("routes_limit")
        return table(f"Routed users ({len(rows)} of {limit})", ["user", "address", "connected", "in", "out"], rows)
    return facts([(k.replace("_", " "), v) for k, v in sorted(proxy.items()) if isinstance(v, (str, int, float))])


@panel("space", "Space")
async def space(view: View) -> Content:
    parts: list[Tag] = []
    donated = await view.get("/space/donated/v1")
    if donated.ok:
        d = donated.result
        parts.append(tags.h3("Donated (supplier)"))
        parts.append(facts([("donated", size(d["donated"])), ("allocated to customers", size(d["consumed"])),
                            ("used on disk", size(d["used"])), ("free", size(d["free"])),
                            ("customers", d["customers_num"])]))
        parts.append(tags.progress(value=str(d["used"]), max=str(max(1, d["donated"])),
                                   **{"aria-label": "donated space used"}))
    consumed = await view.get("/space/consumed/v1")
    if consumed.ok:
        c = consumed.result
        parts.append(tags.h3("Used (customer)"))
        parts.append(facts([("needed", size(c["needed"])), ("stored", size(c["used"])),
                            ("files", c["my_files"]), ("suppliers connected", c["suppliers_num"])]))
    if not parts:
        return note("This node neither donates nor uses space (supplier and customer are off).")
    return parts


@panel("customers", "Customers")
async def customers(view: View) -> Content:
    answer = await view.get("/customer/list/v1")
    if answer.status == 503:
        return note("This node serves no customer: service_supplier is not ON.")
    if not answer.ok:
        return unavailable(answer, "customers")
    rows = [[c.get("global_id", ""), state_badge(c.get("contact_state", "")), size(c.get("allocated")),
             size(c.get("used")), c.get("ecc_map", "")] for c in answer.result]
    return table("Customers this supplier serves", ["customer", "contact", "allocated", "used", "ecc map"], rows)

