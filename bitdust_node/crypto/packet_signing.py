"""Signing and checking signed packets: the legacy scheme of identities over the packet's signed text.

The official node signs every packet with its master key whatever KeyID says, and the receiver
checks it with the public key of the CreatorID's identity.
"""

from __future__ import annotations

import attrs
from cryptography.hazmat.primitives.asymmetric import rsa

from bitdust_node.crypto import signature
from bitdust_node.wire.packet import Packet


def sign_packet(packet: Packet, key: rsa.RSAPrivateKey) -> Packet:
    unsigned = attrs.evolve(packet, signature="")
    return attrs.evolve(unsigned, signature=signature.sign(key, unsigned.signed_parts()))


def packet_signature_valid(packet: Packet, public: rsa.RSAPublicKey, payload: memoryview | None = None) -> bool:
    """`payload`: the payload's text where it lies, for a packet read without it (a stored piece)."""
    head, body, tail = packet.signed_parts()
    return signature.verify(public, (head, body if payload is None else payload, tail), packet.signature)
