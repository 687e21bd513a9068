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


def packet_signature_valid(
    packet: Packet, public: rsa.RSAPublicKey, payload: memoryview | tuple[memoryview, ...] | None = None,
) -> bool:
    """`payload`: the payload's text where it lies, for a packet read without it (a stored piece, or a received one
    as views of the reads it came in)."""
    head, body, tail = packet.signed_parts()
    if payload is None:
        return signature.verify(public, (head, body, tail), packet.signature)
    pieces = (payload,) if isinstance(payload, memoryview) else payload
    return signature.verify(public, (head, *pieces, tail), packet.signature)
