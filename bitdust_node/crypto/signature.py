"""The legacy BitDust signature: RSA PKCS#1 v1.5 with SHA-1 over the SHA-1 digest, as a decimal integer."""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# 4096-bit signatures have at most 1234 decimal digits
MAX_SIGNATURE_DIGITS = 1300


def sign(key: rsa.RSAPrivateKey, text: bytes) -> str:
    digest = hashlib.sha1(text).digest()  # legacy scheme, kept for interoperability
    raw = key.sign(digest, padding.PKCS1v15(), hashes.SHA1())
    return str(int.from_bytes(raw, "big"))


def verify(public: rsa.RSAPublicKey, text: bytes, signature: str) -> bool:
    """True when `signature` (decimal text) is the signature of `text` by `public`."""
    # isdigit alone accepts non-ASCII digits; the length cap keeps int() cheap
    if not signature.isascii() or not signature.isdigit() or len(signature) > MAX_SIGNATURE_DIGITS:
        return False
    value = int(signature)
    size = (public.key_size + 7) // 8
    if value >= 1 << (8 * size):
        return False
    digest = hashlib.sha1(text).digest()
    try:
        public.verify(value.to_bytes(size, "big"), digest, padding.PKCS1v15(), hashes.SHA1())
    except InvalidSignature:
        return False
    return True
