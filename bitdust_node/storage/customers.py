"""Who may store here and how much (PROTOCOL-P2P.md 5.1, 3.3): the customers a supplier accepted, each with
the bytes it asked for, kept in `HOME/supplier/customers.json` (replaced atomically) across restarts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from bitdust_node.crypto.keys import write_secret_file


class BrokenCustomersFile(ValueError):
    """The customers file cannot be read: the official `broken customers file`."""


@attrs.define
class Customer:
    idurl: str
    global_id: str
    allocated: int
    ecc_map: str = ""
    position: int = -1
    family: list[str] = attrs.field(factory=list)
    since: float = 0.0


@attrs.define
class Customers:
    path: Path
    by_idurl: dict[str, Customer] = attrs.field(factory=dict)

    @classmethod
    def load(cls, path: Path) -> Customers:
        found = cls(path)
        if not path.exists():
            return found
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            for item in raw["customers"]:
                customer = Customer(**item)
                found.by_idurl[customer.idurl] = customer
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise BrokenCustomersFile(f"broken customers file {path}: {err}") from None
        return found

    def save(self) -> None:
        doc = {"customers": [attrs.asdict(c) for c in self.by_idurl.values()]}
        write_secret_file(self.path, json.dumps(doc, indent=1, sort_keys=True).encode("utf-8"))

    def get(self, idurl: str) -> Customer | None:
        return self.by_idurl.get(idurl)

    def by_global_id(self, global_id: str) -> Customer | None:
        return next((c for c in self.by_idurl.values() if c.global_id == global_id), None)

    def allocated(self, but: str | None = None) -> int:
        return sum(c.allocated for c in self.by_idurl.values() if c.idurl != but)

    def put(self, customer: Customer) -> None:
        self.by_idurl[customer.idurl] = customer
        self.save()

    def remove(self, idurl: str) -> Customer | None:
        gone = self.by_idurl.pop(idurl, None)
        if gone is not None:
            self.save()
        return gone

    def describe(self) -> list[dict[str, Any]]:
        return [attrs.asdict(c) for c in self.by_idurl.values()]
