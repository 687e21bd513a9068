"""STUN with official nodes, replaying their captured bytes (vectors/dht and vectors/stun).

Ours learns from official nodes: our node plays B of the capture (DHT 14442, UDP datagrams 8883), the
official nodes A and C answer with exactly the bytes they sent B in the capture, only the random rpc
ids (and C's node id and STUN port, as C's answer was not captured) put in; what our node sends
them must be the captured requests byte for byte, its ids aside.
Official nodes learn from ours: each captured `1s` is sent to our UDP datagrams port from the
captured asker's port, and our answer must be the captured official answer byte for byte.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from twisted.internet.protocol import DatagramProtocol
from twisted.trial import unittest

from bitdust_node.dht import datagram, message
from bitdust_node.net.external import ExternalAddress
from bitdust_node.net.stun_client import StunCore, StunMachine
from bitdust_node.net.stun_port import StunPort
from bitdust_node.services.my_ip_port import DhtStunServers
from bitdust_node.wire import stun
from tests.dht.grid import Grid

VECTORS = Path(os.environ.get("BITDUST_VECTORS", Path(__file__).resolve().parents[3] / "shared" / "vectors"))
if not VECTORS.is_dir():
    VECTORS = Path("/work/shared/vectors")
A_ID = "b4e4b7ee69ebaf42d3d327abb8a0d09b1214c70d"
B_ID = "1fc2392ce10e266fc48817e2a250447487d434d0"
C_ID = "30c508ba85ac523e67deebf38d81047eaf07ac81"


def dht_capture(number: int) -> bytes:
    name = next(p for p in (VECTORS / "dht").iterdir() if p.name.startswith(f"{number:02d}_"))
    return bytes.fromhex(name.read_text().strip())


def stun_capture(source: int, target: int, ascii_start: str) -> list[bytes]:
    """The captured datagrams from one UDP datagrams port to another, requests (`1s`) or answers (`1m`)."""
    index = json.loads((VECTORS / "stun" / "index.json").read_text())
    return [bytes.fromhex((VECTORS / "stun" / e["file"]).read_text().strip()) for e in index
            if e["file"].startswith(f"udp_{source}_to_{target}_") and e["ascii"].startswith(ascii_start)]


def rpc_id(raw: bytes) -> bytes:
    header, _body = datagram.unpack(raw)
    return header.rpc_id.encode()


class OfficialDht(DatagramProtocol):
    """An official node's DHT port that answers with its captured bytes, our rpc id put in."""

    def __init__(self, answers: dict[str, bytes], node_id: str = A_ID) -> None:
        self.answers = answers
        self.node_id = node_id.encode()
        self.requests: list[bytes] = []

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        self.requests.append(data)
        request = message.decode(datagram.unpack(data)[1])
        captured = self.answers[request.method]
        answer = captured.replace(rpc_id(captured), request.msg_id.encode()).replace(A_ID.encode(), self.node_id)
        self.transport.write(answer, addr)  # type: ignore[union-attr]


class OfficialStun(DatagramProtocol):
    """An official node's UDP datagrams port answering `1s` with the captured answer."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.asked: list[bytes] = []

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        self.asked.append(data)
        self.transport.write(self.answer, addr)  # type: ignore[union-attr]


class StunInteropTests(unittest.TestCase):
    def setUp(self) -> None:
        if not (VECTORS / "stun").is_dir() or not (VECTORS / "dht").is_dir():
            raise unittest.SkipTest(f"no vectors at {VECTORS}")

    def test_our_node_learns_its_address_from_official_nodes(self) -> None:
        grid = Grid()
        ours = grid.add("127.0.0.1", 14442)
        found_nothing = dht_capture(2)
        stun_port_of_a = dht_capture(8)
        official_a = OfficialDht({"findNode": found_nothing, "request": stun_port_of_a})
        # C's answer was not captured: A's, with C's id and C's UDP datagrams port
        official_c = OfficialDht({"findNode": found_nothing, "request": stun_port_of_a.replace(b"i8882e", b"i8884e")},
                                 C_ID)
        grid.net.listen(("127.0.0.1", 14441), official_a)
        grid.net.listen(("127.0.0.2", 14443), official_c)
        # C's answer to B comes from another address here: one vote per server IP
        stun_a = OfficialStun(stun_capture(8882, 8883, "1m")[0])
        stun_c = OfficialStun(stun_capture(8884, 8883, "1m")[0])
        grid.net.listen(("127.0.0.1", 8882), stun_a)
        grid.net.listen(("127.0.0.2", 8884), stun_c)
        self.assertEqual(grid.resolve(ours.join([("127.0.0.1", 14441), ("127.0.0.2", 14443)])), 2)

        port = StunPort(grid.clock)
        grid.net.listen(("127.0.0.1", 8883), port)
        external = ExternalAddress(grid.clock, "127.0.0.1", ["127.0.0.1"])
        core = StunCore(DhtStunServers(ours), port, grid.clock, on_learned=lambda ip: external.learned("stun", ip))
        machine: Any = StunMachine(core)
        port.listen_replies(machine.reply)
        machine.start()
        grid.net.run(30)
        self.assertEqual(core.learned, "127.0.0.1")
        self.assertEqual((external.address, external.current.source), ("127.0.0.1", "stun"))
        self.assertEqual(sum(core.ignored.values()), 0)
        # what we sent is what official B sent: `1s`, and `request ["stun_port"]` byte for byte but its ids
        self.assertEqual(stun_a.asked, stun_capture(8883, 8882, "1s")[:1])
        self.assertEqual(stun_c.asked, [stun.REQUEST])
        asked = [r for r in official_a.requests if b"7:request" in r]
        self.assertEqual(len(asked), 1)
        captured = dht_capture(7)
        ours_id = ours.layer(0).node_id.encode()
        self.assertEqual(asked[0].replace(rpc_id(asked[0]), rpc_id(captured)).replace(ours_id, B_ID.encode()),
                         captured)
        machine.stop()

    def test_official_nodes_learn_theirs_from_our_answers(self) -> None:
        index = json.loads((VECTORS / "stun" / "index.json").read_text())
        checked = 0
        for entry in index:
            if entry["ascii"] != "1s":
                continue
            source, target = (int(p) for p in entry["file"].split("_")[1:4:2])
            answer = next(e for e in index if e["file"].startswith(f"udp_{target}_to_{source}_")
                          and e["frame"] > entry["frame"])
            grid = Grid()
            ours = StunPort(grid.clock)
            grid.net.listen(("127.0.0.1", target), ours)
            official = StunPortRecorder()
            grid.net.listen(("127.0.0.1", source), official)
            official.transport.write(bytes.fromhex((VECTORS / "stun" / entry["file"]).read_text().strip()),  # type: ignore[union-attr]
                                     ("127.0.0.1", target))
            grid.net.run(0.1)
            expected = bytes.fromhex((VECTORS / "stun" / answer["file"]).read_text().strip())
            self.assertEqual(official.received, [expected], entry["file"])
            self.assertEqual(ours.answered, 1)
            checked += 1
        self.assertEqual(checked, 6)


class StunPortRecorder(DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        self.received.append(data)
