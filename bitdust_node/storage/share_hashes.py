"""The hashes of a block's shares by position, packed: what a catalog holds most of (a catalog of 64,000 files of
16 MiB holds a million of them).

A hash is text everywhere else (`b3:<64 hex>`, erasure.share_hash; 64 hex digits, SHA-256, in older catalogs; ""
while not made yet); here each position is a kind byte and its 32-byte digest in one bytes object: 165 bytes for four
instead of 584 as a list of str. Any other text (a hand-edited copy) keeps the whole row as text, exactly as read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableSequence, Sequence
from typing import Any, overload

_DIGEST = 32
_SLOT = 1 + _DIGEST
_EMPTY, _BLAKE3, _BARE = 0, 1, 2
_BLAKE3_PREFIX = "b3:"
_NO_DIGEST = bytes(_DIGEST)


def _packed_slot(text: str) -> bytes | None:
    """A hash's kind byte and digest; None for a text that would not read back the same."""
    if not text:
        return bytes((_EMPTY,)) + _NO_DIGEST
    kind, digits = (_BLAKE3, text[3:]) if text.startswith(_BLAKE3_PREFIX) else (_BARE, text)
    if len(digits) != 2 * _DIGEST:
        return None
    try:
        digest = bytes.fromhex(digits)
    except ValueError:
        return None
    # fromhex takes upper case and spaces too: only what hex() gives back is packed
    return bytes((kind,)) + digest if digest.hex() == digits else None


def _text(packed: bytes, position: int) -> str:
    at = position * _SLOT
    kind = packed[at]
    if kind == _EMPTY:
        return ""
    digits = packed[at + 1 : at + _SLOT].hex()
    return _BLAKE3_PREFIX + digits if kind == _BLAKE3 else digits


class ShareHashes(MutableSequence[str]):
    """A list of share hashes (text in, text out) that keeps them as bytes."""

    __slots__ = ("_packed", "_texts")

    def __init__(self, hashes: Iterable[str] = ()) -> None:
        self._packed: bytes | None = b""
        self._texts: list[str] | None = None
        self._fill(list(hashes))

    def _fill(self, texts: list[str]) -> None:
        slots = [_packed_slot(t) if isinstance(t, str) else None for t in texts]
        if all(slot is not None for slot in slots):
            self._packed, self._texts = b"".join(slots), None  # type: ignore[arg-type]
        else:
            self._packed, self._texts = None, texts

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
        if self._packed is not None and isinstance(index, int):
            slot = _packed_slot(value) if isinstance(value, str) else None
            if slot is not None:  # one position packed in place of the other: no row made again as text
                at = (index % len(self)) * _SLOT
                self._packed = self._packed[:at] + slot + self._packed[at + _SLOT :]
                return
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
            return self.key() == other.key() if (self._packed is None) == (other._packed is None) else False
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, as the list it stands for

    def __repr__(self) -> str:
        return f"ShareHashes({list(self)!r})"


def share_hashes(hashes: Iterable[str]) -> ShareHashes:
    """`hashes` as ShareHashes (the attrs converter of BlockInfo.shares)."""
    return hashes if isinstance(hashes, ShareHashes) else ShareHashes(hashes)
