"""The DHT family record of a customer (PROTOCOL-P2P.md 5.5): `suppliers:<customer IDURL>:0:7`, SHA-1 hex as
the key, its suppliers by position as the value. The customer writes it when its suppliers change; its
suppliers keep it alive (official records expire after an hour and nobody renews them, so a customer gone
for long cannot find its suppliers again on a fresh machine)."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol

from twisted.logger import Logger

from bitdust_node.wire import peer_json

log = Logger()
FAMILY_VERSION = 7
# DHT values live at most 12 h here; the customer and its suppliers renew them well before that
FAMILY_EXPIRE = 12 * 3600
REFRESH_INTERVAL = 3600.0
# a DHT value is at most 16 KiB (dht/store.py)
MAX_FAMILY_BYTES = 16 * 1024


class FamilyRecords(Protocol):
    def find_value(self, key: str, layer_id: int = 0) -> Any: ...

    def set_value(self, key: str, value: str, layer_id: int = 0, expire: int = ...) -> Any: ...


def family_key(customer_idurl: str) -> str:
    return hashlib.sha1(f"suppliers:{customer_idurl}:0:{FAMILY_VERSION}".encode()).hexdigest()


def family_value(customer_idurl: str, publisher_idurl: str, suppliers: list[str], revision: int, now: float) -> str:
    n = len(suppliers)
    return json.dumps({
        "type": "suppliers", "timestamp": int(now), "revision": revision, "publisher_idurl": publisher_idurl,
        "customer_idurl": customer_idurl, "ecc_map": f"ecc/{n}x{n}", "suppliers": suppliers,
    }, separators=(",", ":"))


async def read_family(dht: FamilyRecords, customer_idurl: str) -> dict[str, Any] | None:
    found, _lookup = await dht.find_value(family_key(customer_idurl))
    if found is None:
        return None
    try:
        doc = peer_json.loads(found.value, MAX_FAMILY_BYTES)
    except (peer_json.PeerJsonError, AttributeError, TypeError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("suppliers"), list) else None


async def renew_family(dht: FamilyRecords, customer_idurl: str, me: str, known: list[str], now: float) -> bool:
    """A supplier's turn: the record as it stands, stored again for another 12 h while it lists me; written
    from what the customer told me (its family when it hired me) when it is gone. True when stored."""
    doc = await read_family(dht, customer_idurl)
    if doc is not None:
        if me not in doc["suppliers"]:
            return False  # the customer moved on without me: not mine to keep alive
        value = json.dumps(doc, separators=(",", ":"))
    elif me in known:
        value = family_value(customer_idurl, me, known, 0, now)
    else:
        return False
    await dht.set_value(family_key(customer_idurl), value, expire=FAMILY_EXPIRE)
    return True
