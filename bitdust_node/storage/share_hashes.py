"""The hashes of a block's shares by position, packed: what a catalog holds most of (a catalog of 64,000 files of
16 MiB holds a million of them).

A hash is text everywhere else (`b3:<64 hex>`, erasure.share_hash; 64 hex digits, SHA-256, in older catalogs; ""
while not made yet); here a row is one bytes object, a kind byte for each position and then their 32-byte digests:
165 bytes for four instead of 584 as a list of str. Any other text (a hand-edited copy) keeps the whole row as text,
exactly as read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableSequence, Sequence
from typing import Any, overload

_DIGEST = 32
_SLOT = 1 + _DIGEST
_EMPTY, _BLAKE3, _BARE = 0, 1, 2
_BLAKE3_PREFIX = "b3:"
_NODE_HASH_LENGTH = len(_BLAKE3_PREFIX) + 2 * _DIGEST


def _packed_row(texts: list[str]) -> bytes | None:
    """The kind bytes and digests of a row; None for a row with a text that would not read back the same."""
    try:
        joined = "".join(texts)
    except TypeError:
        return None
    # what the node writes, checked and read in C a row at a time (a million rows in a large catalog): every text
    # "b3:" and 64 digits, the prefix where each starts and nowhere else, and digits that hex() gives back
    count, width = len(texts), _NODE_HASH_LENGTH
    if (len(joined) == count * width and set(map(len, texts)) <= {width} and joined[2::width] == ":" * count
            and joined[0::width] == "b" * count and joined[1::width] == "3" * count):
        digits = joined.replace(_BLAKE3_PREFIX, "")
        if len(digits) == count * 2 * _DIGEST:
            try:
                digests = bytes.fromhex(digits)
            except ValueError:
                return None
            return bytes((_BLAKE3,)) * count + digests if digests.hex() == digits else None
    kinds, pieces = bytearray(), []
    for text in texts:
        kind, part = (_EMPTY, "00" * _DIGEST) if not text else (
            (_BLAKE3, text[3:]) if text.startswith(_BLAKE3_PREFIX) else (_BARE, text))
        if len(part) != 2 * _DIGEST:
            return None
        kinds.append(kind)
        pieces.append(part)
    digits = "".join(pieces)
    try:
        digests = bytes.fromhex(digits)
    except ValueError:
        return None
    # fromhex takes upper case and spaces too: only what hex() gives back is packed
    return bytes(kinds) + digests if digests.hex() == digits else None


def _text(packed: bytes, position: int) -> str:
    count = len(packed) // _SLOT
    kind = packed[position]
    if kind == _EMPTY:
        return ""
    at = count + position * _DIGEST
    digits = packed[at : at + _DIGEST].hex()
    return _BLAKE3_PREFIX + digits if kind == _BLAKE3 else digits


class ShareHashes(MutableSequence[str]):
    """A list of share hashes (text in, text out) that keeps them as bytes."""

    __slots__ = ("_packed", "_texts")

    def __init__(self, hashes: Iterable[str] = ()) -> None:
        self._packed: bytes | None = b""
        self._texts: list[str] | None = None
        self._fill(hashes if isinstance(hashes, list) else list(hashes))

    def _fill(self, texts: list[str]) -> None:
        packed = _packed_row(texts)
        self._packed, self._texts = (packed, None) if packed is not None else (None, list(texts))

    def key(self) -> bytes | tuple[Any, ...]:
        """What the hashes are, hashable (a catalog's entry_values)."""
        return self._packed if self._packed is not None else tuple(self._texts or ())

    def __len__(self) -> int:
        return len(self._packed) // _SLOT if self._packed is not None else len(self._texts or ())

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return list(self)[index]
        if self._packed is None:
            return (self._texts or [])[index]
        count = len(self)
        if not -count <= index < count:
            raise IndexError("share position out of range")
        return _text(self._packed, index % count)

    def __iter__(self) -> Iterator[str]:
        if self._packed is None:
            return iter(list(self._texts or ()))
        packed = self._packed
        return (_text(packed, position) for position in range(len(packed) // _SLOT))

    @overload
    def __setitem__(self, index: int, value: str) -> None: ...

    @overload
    def __setitem__(self, index: slice, value: Iterable[str]) -> None: ...

    def __setitem__(self, index: int | slice, value: Any) -> None:
        texts = list(self)
        texts[index] = value
        self._fill(texts)

    def __delitem__(self, index: int | slice) -> None:
        texts = list(self)
        del texts[index]
        self._fill(texts)

    def insert(self, index: int, value: str) -> None:
        texts = list(self)
        texts.insert(index, value)
        self._fill(texts)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ShareHashes):
            return self.key() == other.key()  # a packed row's key (bytes) never equals a loose one's (a tuple)
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, as the list it stands for

    def __repr__(self) -> str:
        return f"ShareHashes({list(self)!r})"


def share_hashes(hashes: Iterable[str]) -> ShareHashes:
    """`hashes` as ShareHashes (the attrs converter of BlockInfo.shares)."""
    return hashes if isinstance(hashes, ShareHashes) else ShareHashes(hashes)
