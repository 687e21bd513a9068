"""Access to the captured identities and throwaway keys in ../shared/vectors."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from bitdust_node.crypto import keys
from bitdust_node.wire import identity_xml

VECTORS = Path(os.environ.get("BITDUST_VECTORS", Path(__file__).resolve().parents[3] / "shared" / "vectors"))


def identity_bytes(name: str) -> bytes:
    return (VECTORS / "identity" / f"{name}.xml").read_bytes()


def identity(name: str) -> identity_xml.Identity:
    return identity_xml.parse(identity_bytes(name))


@functools.cache
def private_key(name: str) -> rsa.RSAPrivateKey:
    return keys.read_private_key(VECTORS / "keys" / f"{name}.THROWAWAY_TEST_KEY.pem")
