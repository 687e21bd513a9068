"""One block of a customer's file, sealed before it is cut into shares: AES-256-GCM under a fresh key per
block (authenticated: a changed byte is an error, never wrong data), the key wrapped with RSA-OAEP
(SHA-256) for the customer's own key. Only the customer's private key opens it."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
TAG = 16
# plaintext is written out this much at a time as it is opened
OPEN_STEP = 1024 * 1024


class BlockOpenError(ValueError):
    """A sealed block that this key does not open, or that was changed."""


@attrs.frozen
class SealedBlock:
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes  # with the 16-byte GCM tag at its end


@attrs.frozen
class BlockKey:
    """A block's own key and nonce: what seals it, and seals it again alike (a share made again for a retry)."""

    key: bytes
    nonce: bytes

    @classmethod
    def fresh(cls) -> BlockKey:
        return cls(AESGCM.generate_key(bit_length=256), os.urandom(12))


def seal(plaintext: bytes, owner: rsa.RSAPublicKey, associated: bytes, key: BlockKey | None = None) -> SealedBlock:
    """`associated` (the block's place: path id, version, number) is authenticated with it: moved blocks fail."""
    key = key or BlockKey.fresh()
    return SealedBlock(owner.encrypt(key.key, _OAEP), key.nonce, AESGCM(key.key).encrypt(key.nonce, plaintext,
                                                                                          associated))


def open_sealed(block: SealedBlock, private: rsa.RSAPrivateKey, associated: bytes) -> bytes:
    try:
        key = private.decrypt(block.wrapped_key, _OAEP)
        return AESGCM(key).decrypt(block.nonce, block.ciphertext, associated)
    except (ValueError, InvalidTag):
        raise BlockOpenError("the block does not open with this key, or it was changed") from None


def open_into(
    write: Callable[[bytes], object], pieces: Sequence[bytes | memoryview], size: int, wrapped_key: bytes,
    nonce: bytes, private: rsa.RSAPrivateKey, associated: bytes,
) -> int:
    """Open a sealed block given as pieces that joined and cut at `size` are its ciphertext (a block's data
    shares), writing the plaintext a step at a time: neither the ciphertext nor the plaintext is made whole.
    What was written is not to be trusted unless this returns (the tag is checked last): BlockOpenError. Returns
    the bytes written."""
    if size < TAG:
        raise BlockOpenError("a sealed block is shorter than its tag")
    try:
        key = private.decrypt(wrapped_key, _OAEP)
    except ValueError:
        raise BlockOpenError("the block's key does not open with this key") from None
    views, left = [], size
    for piece in pieces:
        view = memoryview(piece)[:left]
        views.append(view)
        left -= len(view)
    if left:
        raise BlockOpenError("the pieces are shorter than the block")
    tag = _last(views, TAG)
    opening = Cipher(algorithms.AES(key), modes.GCM(nonce, tag)).decryptor()
    opening.authenticate_additional_data(associated)
    left = size - TAG
    for view in views:
        body = view[:left]
        left -= len(body)
        for at in range(0, len(body), OPEN_STEP):
            write(opening.update(body[at : at + OPEN_STEP]))
    try:
        opening.finalize()
    except InvalidTag:
        raise BlockOpenError("the block was changed") from None
    return size - TAG


def _last(views: list[memoryview], count: int) -> bytes:
    """The last `count` bytes of the views joined."""
    taken: list[bytes] = []
    for view in reversed(views):
        need = count - sum(len(t) for t in taken)
        if need <= 0:
            break
        taken.insert(0, bytes(view[-need:]) if len(view) >= need else bytes(view))
    return b"".join(taken)
