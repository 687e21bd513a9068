"""One block of a customer's file, sealed before it is cut into shares: AES-256-GCM under a fresh key per
block (authenticated: a changed byte is an error, never wrong data), the key wrapped with RSA-OAEP
(SHA-256) for the customer's own key. Only the customer's private key opens it."""

from __future__ import annotations

import os

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


class BlockOpenError(ValueError):
    """A sealed block that this key does not open, or that was changed."""


@attrs.frozen
class SealedBlock:
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes  # with the 16-byte GCM tag at its end


def seal(plaintext: bytes, owner: rsa.RSAPublicKey, associated: bytes) -> SealedBlock:
    """`associated` (the block's place: path id, version, number) is authenticated with it: moved blocks fail."""
    key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(12)
    return SealedBlock(owner.encrypt(key, _OAEP), nonce, AESGCM(key).encrypt(nonce, plaintext, associated))


def open_sealed(block: SealedBlock, private: rsa.RSAPrivateKey, associated: bytes) -> bytes:
    try:
        key = private.decrypt(block.wrapped_key, _OAEP)
        return AESGCM(key).decrypt(block.nonce, block.ciphertext, associated)
    except (ValueError, InvalidTag):
        raise BlockOpenError("the block does not open with this key, or it was changed") from None
