"""The legacy BitDust signature: RSA PKCS#1 v1.5 with SHA-1 over the SHA-1 digest, as a decimal integer."""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# 4096-bit signatures have at most 1234 decimal digits
MAX_SIGNATURE_DIGITS = 1300


def _digest(text: bytes | tuple[bytes | memoryview, ...]) -> bytes:
    """SHA-1 of the text, given whole or in pieces (a large payload is not copied to be hashed)."""
    hashed = hashlib.sha1()  # legacy scheme, kept for interoperability
    for part in (text,) if isinstance(text, bytes) else text:
        hashed.update(part)
    return hashed.digest()


def sign(key: rsa.RSAPrivateKey, text: bytes | tuple[bytes, ...]) -> str:
    raw = key.sign(_digest(text), padding.PKCS1v15(), hashes.SHA1())
    return str(int.from_bytes(raw, "big"))


def verify(public: rsa.RSAPublicKey, text: bytes | tuple[bytes | memoryview, ...], signature: str) -> bool:
    """True when `signature` (decimal text) is the signature of `text` by `public`."""
    # isdigit alone accepts non-ASCII digits; the length cap keeps int() cheap
    if not signature.isascii() or not signature.isdigit() or len(signature) > MAX_SIGNATURE_DIGITS:
        return False
    value = int(signature)
    size = (public.key_size + 7) // 8
    if value >= 1 << (8 * size):
        return False
    digest = _digest(text)
    try:
        public.verify(value.to_bytes(size, "big"), digest, padding.PKCS1v15(), hashes.SHA1())
    except InvalidSignature:
        return False
    return True
