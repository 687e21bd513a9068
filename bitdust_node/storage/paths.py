"""Where a customer's piece lives (PROTOCOL-P2P.md 5.1, 5.2): PacketIDs read strictly, paths that cannot
leave the customer's folder.

A piece's PacketID is `<alias>$<user>@<host>[_port]:<path>` with `<path>` like
`3/F20261201075109PM/0-1-Data`; a catalog piece `.index.<position>.<uid>` is kept as `index`. Every
component is checked against what official customers make, so `..`, absolute paths, empty components
or odd characters never reach the disk.
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs

_ALIAS = re.compile(r"[a-z0-9_-]{1,40}")
_GLOBAL_ID = re.compile(r"([a-z0-9_-]{3,20})@([A-Za-z0-9.-]{1,100}?)(?:_(\d{1,5}))?")
# path ids, versions (`F20261201075109PM`) and pieces (`0-1-Data`): letters, digits, `-` and `_`
_COMPONENT = re.compile(r"[A-Za-z0-9_-]{1,64}")
_INDEX = re.compile(r"\.index(?:\.\d{1,4}(?:\.[\d.]{1,40})?)?")
INDEX_NAME = "index"
# ids a DeleteFile / DeleteBackup lists in its payload that a supplier reads (the rest are left undeleted)
MAX_LISTED_IDS = 1000
MAX_DEPTH = 32


class BadPath(ValueError):
    """A PacketID that does not name a piece a customer may store (the official `incorrect path`)."""


@attrs.frozen
class PiecePath:
    alias: str
    customer: str  # global id, `dave@127.0.0.1_8084`
    parts: tuple[str, ...]  # ("3", "F20261201075109PM", "0-1-Data") or ("index",)

    @property
    def key_id(self) -> str:
        return f"{self.alias}${self.customer}"

    @property
    def is_index(self) -> bool:
        return self.parts == (INDEX_NAME,)

    def relative(self) -> Path:
        """The file under the supplier's `customers` folder."""
        return Path(self.customer, self.alias, *self.parts)


def parse_piece_id(packet_id: str, allow_folder: bool = False) -> PiecePath:
    """The piece a PacketID names; BadPath for anything an official customer would not send."""
    head, sep, path = packet_id.partition(":")
    if not sep or not path:
        raise BadPath("incorrect path")
    alias, dollar, customer = head.rpartition("$")
    if not dollar:
        alias = "master"
    if not _ALIAS.fullmatch(alias) or not _GLOBAL_ID.fullmatch(customer):
        raise BadPath("incorrect path")
    if _INDEX.fullmatch(path):
        return PiecePath(alias, customer, (INDEX_NAME,))
    parts = tuple(path.split("/"))
    if len(parts) > MAX_DEPTH or not all(_COMPONENT.fullmatch(p) for p in parts):
        raise BadPath("incorrect path")
    if not allow_folder and len(parts) < 2:
        raise BadPath("incorrect path")
    return PiecePath(alias, customer, parts)
