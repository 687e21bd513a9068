"""REST of the supplier: donated space, this machine's disk, the customers (PROTOCOL-P2P.md 5.6)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bitdust_node.api.routes import ApiContext, ApiRequest, endpoint
from bitdust_node.services.p2p_hookups import P2pHookupsService
from bitdust_node.services.supplier import CUSTOMERS_DIR, SupplierService

if TYPE_CHECKING:
    from bitdust_node.storage.supplier import Supplier

SUPPLIER = "service_supplier"


def _supplier(api: ApiContext) -> Supplier:
    supplier = api.running(SupplierService).supplier
    assert supplier is not None
    return supplier


@endpoint("GET", "/space/donated/v1", "Space donated to customers, and what each one takes", service=SUPPLIER)
async def space_donated(api: ApiContext, req: ApiRequest) -> dict[str, Any]:
    supplier = _supplier(api)
    real = sum((await supplier.usage_of_all()).values())
    donated = supplier.donated()
    consumed = supplier.customers.allocated()
    rows = [{"idurl": c.idurl, "consumed": c.allocated, "used": supplier.store.used[c.global_id],
             "real": supplier.store.used[c.global_id]} for c in supplier.customers.by_idurl.values()]
    return {
        "donated": donated,
        "consumed": consumed,
        "consumed_percent": _percent(consumed, donated),
        "free": max(0, donated - consumed),
        "used": real,
        "real": real,
        "used_percent": _percent(real, donated),
        "customers_num": len(rows),
        "customers": rows,
        "old_customers": [],
        "old_customers_real": 0,
        "old_customers_used": 0,
    }


def _percent(part: int, whole: int) -> str:
    return f"{round(100 * part / whole) if whole else 0}%"


@endpoint("GET", "/customer/list/v1", "The customers this supplier serves", service=SUPPLIER)
def customer_list(api: ApiContext, req: ApiRequest) -> list[dict[str, Any]]:
    supplier = _supplier(api)
    service = api.graph.service("p2p_hookups")
    hookups = service.hookups if isinstance(service, P2pHookupsService) else None
    heard: dict[str, float] = hookups.last_heard if hookups is not None else {}
    now = api.ctx.reactor.seconds()
    return [
        {
            "idurl": c.idurl,
            "global_id": c.global_id,
            "position": c.position,
            "contact_state": "CONNECTED" if now - heard.get(c.idurl, -1e9) < 600 else "OFFLINE",
            "allocated": c.allocated,
            "used": supplier.store.used[c.global_id],
            "ecc_map": c.ecc_map,
        }
        for c in supplier.customers.by_idurl.values()
    ]


def _folder_bytes(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@endpoint("GET", "/space/local/v1", "This machine's disk and what the node keeps on it")
def space_local(api: ApiContext, req: ApiRequest) -> dict[str, Any]:
    home = api.ctx.home
    disk = shutil.disk_usage(home)
    customers = _folder_bytes(home / CUSTOMERS_DIR)
    backups = _folder_bytes(home / "backups")
    temp = _folder_bytes(home / "temp")
    total = customers + backups + temp
    return {
        "backups": backups,
        "customers": customers,
        "temp": temp,
        "total": total,
        "disktotal": disk.total,
        "diskfree": disk.free,
        "diskfree_percent": f"{100 * disk.free / disk.total:.5f}%" if disk.total else "0%",
        "total_percent": f"{100 * total / disk.total:.5f}%" if disk.total else "0%",
    }
