"""The router's RelayIn written in pieces is byte for byte the reference: the block sealed by crypto/block.py,
the packet signed and serialized by the reference serializer, for any relayed bytes in any pieces and any ids;
and the routed user opens it to the packet as it came."""

from __future__ import annotations

import itertools
import os

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.crypto import block as blocks
from bitdust_node.crypto import keys, signature
from bitdust_node.crypto.packet_signing import packet_signature_valid, sign_packet
from bitdust_node.identity.my_identity import MyIdentity
from bitdust_node.proxy import relay
from bitdust_node.proxy.relay_in import relay_in_parts
from bitdust_node.wire import packet as wire
from bitdust_node.wire import packet_fast
from tests.identity.vectors import identity, private_key

ROUTER = MyIdentity(identity("bob"), private_key("bob"))
USER = identity("carol")
USER_KEY = keys.public_key_from_openssh(USER.publickey)
DATE = "2026/12/01 12:00:00 PM"
SESSION_KEY, IV = bytes(range(16)), bytes(range(16, 32))
WRAPPED = blocks.wrap_key(USER_KEY, SESSION_KEY)


def reference(relayed: bytes, owner_id: str, packet_id: str) -> bytes:
    """relay.seal + the gateway's outbox + the reference serializer, with the same session key, IV and wrapping."""
    unsigned = blocks.Block(relay.ROUTED_INCOMING, ROUTER.idurl, 0, True, blocks.SESSION_KEY_TYPE, WRAPPED,
                            len(relayed), blocks.encrypt_data(relayed, SESSION_KEY, IV).decode("ascii"))
    block = attrs.evolve(unsigned, signature=signature.sign(ROUTER.key, unsigned.signed_parts()))
    packet = sign_packet(wire.Packet("RelayIn", owner_id, ROUTER.idurl, packet_id, DATE,
                                     blocks.serialize_block(block), USER.sources[0], ROUTER.key_id), ROUTER.key)
    return wire.serialize(packet)


def parts(relayed: bytes | tuple[bytes, ...], owner_id: str = "http://127.0.0.1:8084/alice.xml",
          packet_id: str = "p1") -> bytes:
    return b"".join(relay_in_parts(relayed, owner_id, packet_id, ROUTER, USER.sources[0], USER_KEY, DATE,
                                   SESSION_KEY, IV, WRAPPED))


class RelayInTests(SynchronousTestCase):
    def test_a_megabyte_in_three_pieces_is_the_reference_and_opens_to_the_packet(self) -> None:
        alice = identity("alice")
        inner = sign_packet(wire.Packet("Data", alice.sources[0], alice.sources[0], "p1", DATE,
                                        os.urandom(700_000).hex().encode()[:1_048_576], USER.sources[0], "k"),
                            private_key("alice"))
        head, body, tail = packet_fast.serialize_parts(inner)
        data = parts((head, body, tail), alice.sources[0])
        self.assertEqual(data, reference(head + body + tail, alice.sources[0], "p1"))
        relay_in = wire.parse(data)
        self.assertTrue(packet_signature_valid(relay_in, keys.public_key_from_openssh(ROUTER.identity.publickey)))
        opened = relay.unseal(relay_in.payload, private_key("carol"), relay.ROUTED_INCOMING)
        self.assertEqual(opened, head + body + tail)

    @settings(max_examples=60, deadline=None)
    @given(
        relayed=st.binary(min_size=0, max_size=3000),
        cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=4),
        owner_id=st.text(max_size=40).map(lambda t: t.encode("latin-1", "replace").decode("latin-1")),
        packet_id=st.text(alphabet=st.characters(max_codepoint=255), max_size=40),
    )
    def test_any_bytes_in_any_pieces_and_any_ids(self, relayed: bytes, cuts: list[int], owner_id: str,
                                                 packet_id: str) -> None:
        edges = sorted({min(c, len(relayed)) for c in cuts} | {0, len(relayed)})
        pieces = tuple(relayed[a:b] for a, b in itertools.pairwise(edges)) or (relayed,)
        self.assertEqual(parts(pieces, owner_id, packet_id), reference(relayed, owner_id, packet_id))
