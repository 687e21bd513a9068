"""A node flooded over real TCP with Identity packets, each from a new user carrying its own self-signed identity:
its identity cache stays within its bound in memory and on disk, what it let go is counted in /service/list/v1,
and it keeps answering."""

from __future__ import annotations

import uuid
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from twisted.internet import protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.trial.unittest import TestCase

from bitdust_node.crypto.packet_signing import sign_packet
from bitdust_node.identity.cache import CACHE_DIR
from bitdust_node.wire import packet as wire
from bitdust_node.wire import packet_fast, tcp_frames
from tests.identity.support import make_identity
from tests.support.network import node_settings, start_named
from tests.support.nodes import api, eventually

SERVER, BOB, FLOOD = "127.0.0.180", "127.0.0.181", "127.0.0.182"
# the identity server the flood's identities name: nobody listens there (the identities are carried)
NOWHERE = "127.0.0.183:8084"
USERS = 40


class Flooder(protocol.Protocol):
    """A hello, then one file a packet: each an Identity packet from a new user."""

    def __init__(self, files: list[bytes]) -> None:
        self.files = files

    def connectionMade(self) -> None:
        transport: Any = self.transport
        hello = f"{FLOOD}:7771 http://{NOWHERE}/flood.xml".encode()
        transport.write(tcp_frames.encode_frame(tcp_frames.HELLO, hello))
        for number, data in enumerate(self.files, start=1):
            transport.write(b"".join(tcp_frames.encode_data(number, data)))


def identity_packet(number: int, to: str) -> bytes:
    key = rsa.generate_private_key(65537, 1024)
    name = f"flood{number}"
    xml = make_identity(name, key, hosts=(NOWHERE,))
    idurl = f"http://{NOWHERE}/{name}.xml"
    unsigned = wire.Packet("Identity", idurl, idurl, f"flood{uuid.uuid4().hex[:8]}", "d", xml, to, f"master${name}")
    return packet_fast.serialize(sign_packet(unsigned, key))


class IdentityFloodTests(TestCase):
    async def test_a_flood_of_new_identities_keeps_the_cache_within_its_bound(self) -> None:
        await start_named(self, "server", SERVER, node_settings(SERVER, "server"))
        bob = await start_named(self, "bob", BOB, node_settings(SERVER))
        assert bob.ctx is not None
        cache = bob.ctx.identity_cache
        self.assertTrue(cache.armed)
        me = bob.ctx.identity.require().idurl
        cache.max_bytes = cache.held_bytes() + 16 * 1024  # room for a dozen of the flood's users
        files = [identity_packet(n, me) for n in range(USERS)]
        endpoint = TCP4ClientEndpoint(reactor, BOB, 7771, timeout=10, bindAddress=(FLOOD, 0))
        connection = await connectProtocol(endpoint, Flooder(files))
        self.addCleanup(connection.transport.loseConnection)

        async def gateway() -> dict[str, Any]:
            _status, reply = await api(bob, "GET", "/service/list/v1")
            return next(s for s in reply["result"] if s["name"] == "service_gateway")

        async def all_seen() -> bool:
            return (await gateway())["identities_forgotten"] >= USERS - 20

        await eventually(all_seen, timeout=60, interval=0.3)
        status = await gateway()
        self.assertLessEqual(status["identity_cache_bytes"], cache.max_bytes)
        on_disk = sum(p.stat().st_size for p in (bob.home / CACHE_DIR).glob("*.xml"))
        self.assertLessEqual(on_disk, cache.max_bytes)
        # the last of the flood is kept, and bob still answers
        self.assertIsNotNone(cache.get(f"http://{NOWHERE}/flood{USERS - 1}.xml"))
        status_code, _reply = await api(bob, "GET", "/process/health/v1")
        self.assertEqual(status_code, 200)
