"""What a supplier says it holds for me: the Files text (PROTOCOL-P2P.md 5.1, the vectors' packets 020-046)
read into the versions it lists and, for each, the blocks whose Data piece is there.

    Q*
    Kmaster
    F3 -1
    V3/F20261201075109PM 0 0-2 79604 missing Data:2 Parity:1
    Findex 2404

A version line names the supplier's position, the blocks `0-<last>` and the bytes; a block up to the last whose
Data piece is not there is listed after `missing Data:`. A block past the last one listed is not held either.
"""

from __future__ import annotations

import zlib

import attrs

# a listing of a million pieces is far under this; a compressed bomb stops here
MAX_LISTING_BYTES = 16 * 1024 * 1024
MAX_LINES = 1_000_000


class ListingError(ValueError):
    """A Files text that cannot be read."""


@attrs.frozen
class HeldVersion:
    last: int  # the last block listed
    missing: frozenset[int]  # blocks up to it without their Data piece

    def has(self, block: int) -> bool:
        return block <= self.last and block not in self.missing


@attrs.frozen
class Holdings:
    """The versions a supplier lists (by `<path id>/<version>`) and whether it holds my catalog's copy."""

    versions: dict[str, HeldVersion]
    index: bool

    def has(self, version_path: str, block: int) -> bool:
        held = self.versions.get(version_path)
        return held is not None and held.has(block)


def read_listing(compressed: bytes) -> Holdings:
    """The Files payload's plaintext (zlib) read strictly; ListingError when it is not a listing."""
    inflate = zlib.decompressobj()
    try:
        text = inflate.decompress(compressed, MAX_LISTING_BYTES)
    except zlib.error as err:
        raise ListingError(f"listing not zlib: {err}") from None
    if inflate.unconsumed_tail:
        raise ListingError(f"listing over {MAX_LISTING_BYTES} bytes")
    try:
        lines = text.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise ListingError("listing not UTF-8") from None
    if len(lines) > MAX_LINES:
        raise ListingError(f"listing over {MAX_LINES} lines")
    versions: dict[str, HeldVersion] = {}
    index = False
    for line in lines:
        if line.startswith("V"):
            path, held = _version(line[1:])
            versions[path] = held
        elif line.startswith("F") and line[1:].partition(" ")[0] == "index":
            index = True
    return Holdings(versions, index)


def _version(text: str) -> tuple[str, HeldVersion]:
    """`<path> <position> 0-<last> <bytes>[ missing Data:a,b Parity:c]`: the path and the blocks with Data."""
    fields = text.split(" ")
    if len(fields) < 4 or not fields[2].startswith("0-"):
        raise ListingError(f"version line not understood: {text[:100]!r}")
    try:
        last = int(fields[2][2:])
        missing: set[int] = set()
        if len(fields) > 4:
            if fields[4] != "missing":
                raise ValueError(fields[4])
            for group in fields[5:]:
                kind, _colon, numbers = group.partition(":")
                if kind == "Data":
                    missing.update(int(n) for n in numbers.split(",") if n)
    except ValueError:
        raise ListingError(f"version line not understood: {text[:100]!r}") from None
    if not 0 <= last < 10_000_000:
        raise ListingError(f"version line not understood: {text[:100]!r}")
    return fields[0], HeldVersion(last, frozenset(missing))
