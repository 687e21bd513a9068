"""Sign and verify identities: the legacy signature over the identity's signed text."""

from __future__ import annotations

import attrs
from cryptography.hazmat.primitives.asymmetric import rsa

from bitdust_node.crypto import keys, signature
from bitdust_node.wire.identity_xml import Identity, signed_text


def sign_identity(identity: Identity, key: rsa.RSAPrivateKey) -> Identity:
    """The same identity with this key's public key and a fresh signature."""
    with_key = attrs.evolve(identity, publickey=keys.openssh_public_text(key), signature="")
    return attrs.evolve(with_key, signature=signature.sign(key, signed_text(with_key)))


def verify_identity(identity: Identity) -> bool:
    try:
        public = keys.public_key_from_openssh(identity.publickey)
    except keys.InvalidKey:
        return False
    return signature.verify(public, signed_text(identity), identity.signature)
