"""Erasure coding of encrypted blocks with zfec: n shares of which any k = ceil(n/2) rebuild the block.

Storage stays at most twice the data, as with official ECC maps, but any floor(n/2) suppliers may vanish
(official 13x13 survives 4 of 13). Every share is hashed (BLAKE3; catalogs written before it hold SHA-256,
still checked as such): a share that does not match is a lying or broken supplier's, and is set aside before
decoding.
"""

from __future__ import annotations

import hashlib
import math

import blake3
import zfec

from bitdust_node.storage import isal_parity

MAX_SHARES = 64


class NotEnoughShares(ValueError):
    """Fewer good shares than k: the block cannot be rebuilt from what the suppliers gave."""


def needed(n: int) -> int:
    """k for n suppliers: half of them, rounded up."""
    return max(1, math.ceil(n / 2))


# what marks a BLAKE3 share hash in the catalog: a bare 64-digit hex is the SHA-256 of catalogs written before
BLAKE3 = "b3:"


def share_hash(share: bytes | bytearray | memoryview, like: str = "") -> str:
    """BLAKE3, about 4x SHA-256's speed here (0.15 against 0.59 ms a MiB: an upload hashes twice its size); the
    SHA-256 an older catalog holds when `like` is one of its hashes (so a share is checked against either)."""
    if like and not like.startswith(BLAKE3):
        return hashlib.sha256(share).hexdigest()
    return BLAKE3 + blake3.blake3(share).hexdigest()


def encode(data: bytes, n: int) -> list[bytes | bytearray | memoryview]:
    """n shares of `data`, each len(data)/k bytes (rounded up), the last of the k data shares padded with zeros:
    the shares zfec's easyfec makes. The first k are views into `data` (only a padded last one is copied), so a
    block is not copied to be coded."""
    primary = data_shares(data, n)
    return [*primary, *parity_shares(primary, n)]


def data_shares(data: bytes, n: int) -> list[bytes | memoryview]:
    """The k data shares of `data` for n shares: views into it (a padded last one copied)."""
    if not 1 <= n <= MAX_SHARES:
        raise ValueError(f"{n} shares: 1 to {MAX_SHARES} are supported")
    if n == 1:
        return [data]
    k = needed(n)
    size = -(-len(data) // k)
    view = memoryview(data)
    primary: list[bytes | memoryview] = [view[i * size : (i + 1) * size] for i in range(k)]
    return [p if len(p) == size else bytes(p) + bytes(size - len(p)) for p in primary]


def parity_shares(primary: list[bytes | memoryview], n: int) -> list[bytes | bytearray]:
    """The n - k parity shares coded from the k data shares: by ISA-L where it is installed (the same shares,
    about 10x faster: isal_parity.py), else by zfec."""
    k = len(primary)
    if n <= k:
        return []
    if isal_parity.available(len(primary[0])):
        return list(isal_parity.parity(primary, n))
    return list(zfec.Encoder(k, n).encode(primary, list(range(k, n))))


def decode(shares: dict[int, bytes], hashes: list[str], size: int) -> bytes:
    """The block from any k shares whose hashes match (`hashes` by share number); NotEnoughShares otherwise."""
    n = len(hashes)
    good = {i: s for i, s in shares.items() if 0 <= i < n and share_hash(s, hashes[i]) == hashes[i]}
    return b"".join(primary(good, n, size))[:size]


def primary(shares: dict[int, bytes], n: int, size: int) -> list[bytes | memoryview]:
    """The k data shares of a block of `size` bytes from any k of its n shares, already checked (their hashes
    matched): the data shares given are passed on as they are, the missing ones rebuilt from parity. Joined and
    cut at `size`, they are the block; NotEnoughShares when fewer than k are given."""
    k = needed(n)
    usable = {i: s for i, s in shares.items() if 0 <= i < n}
    if len(usable) < k:
        raise NotEnoughShares(f"{len(usable)} good shares of {n}, {k} needed")
    if n == 1:
        return [usable[0]]
    chosen = sorted(usable)[:k]
    share_size = len(usable[chosen[0]])
    if share_size * k < size or any(len(usable[i]) != share_size for i in chosen):
        raise NotEnoughShares("shares of different sizes")
    if chosen == list(range(k)):
        return [usable[i] for i in chosen]
    return list(zfec.Decoder(k, n).decode([usable[i] for i in chosen], chosen))
