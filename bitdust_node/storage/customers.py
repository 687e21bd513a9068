"""Who may store here and how much (PROTOCOL-P2P.md 5.1, 3.3): the customers a supplier accepted, each with
the bytes it asked for, kept in `HOME/supplier/customers.json` (replaced atomically) across restarts.

A customer whose identity moved to other servers (a rotation) is the same customer: found by any of its
IDURLs, filed again under the one it goes by now, its folder (`global_id`) the one it was given first."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from twisted.logger import Logger

from bitdust_node.crypto.keys import write_secret_file

log = Logger()


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


def _unchanged(idurl: str) -> str:
    return idurl


@attrs.define
class Customers:
    path: Path
    by_idurl: dict[str, Customer] = attrs.field(factory=dict)
    # the IDURL a user goes by now, after any rotation known here (the identity cache's newest_idurl)
    newest: Callable[[str], str] = attrs.field(default=_unchanged, kw_only=True)

    @classmethod
    def load(cls, path: Path, newest: Callable[[str], str] = _unchanged) -> Customers:
        found = cls(path, newest=newest)
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
        """The customer known by `idurl` or by an IDURL it moved from; filed under its newest one."""
        found = self.by_idurl.get(idurl)
        if found is not None:
            return found
        now = self.newest(idurl)
        for customer in list(self.by_idurl.values()):
            if self.newest(customer.idurl) == now:
                return self._moved(customer, now)
        return None

    def _moved(self, customer: Customer, idurl: str) -> Customer:
        if customer.idurl != idurl:
            log.info("customer {old} moved to {new}: its folder {folder} follows", old=customer.idurl, new=idurl,
                     folder=customer.global_id)
            del self.by_idurl[customer.idurl]
            customer.idurl = idurl
            self.by_idurl[idurl] = customer
            self.save()
        return customer

    def by_global_id(self, global_id: str) -> Customer | None:
        return next((c for c in self.by_idurl.values() if c.global_id == global_id), None)

    def allocated(self, but: str | None = None) -> int:
        return sum(c.allocated for c in self.by_idurl.values() if c.idurl != but)

    def put(self, customer: Customer) -> None:
        self.by_idurl[customer.idurl] = customer
        self.save()

    def remove(self, idurl: str) -> Customer | None:
        known = self.get(idurl)
        gone = self.by_idurl.pop(known.idurl, None) if known is not None else None
        if gone is not None:
            self.save()
        return gone

    def describe(self) -> list[dict[str, Any]]:
        return [attrs.asdict(c) for c in self.by_idurl.values()]
