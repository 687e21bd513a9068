"""Replay the requests captured from real BitDust nodes to our node: the answers must be the
captured answers byte for byte, once the answering node's id is ours."""

from __future__ import annotations

import json

from twisted.internet.protocol import DatagramProtocol
from twisted.trial import unittest

from bitdust_node.dht import datagram, message
from bitdust_node.wire import stun
from tests.dht.grid import Grid
from tests.dht.test_wire_vectors import VECTORS

# (request, captured answer) to node A in capture order: 15 finds what 13 stored, 18 lists
# the node that sent the earlier requests (19/20 are between B and C, 27/28 unanswered)
PAIRS = [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (17, 18), (21, 22), (23, 24), (25, 26)]


class _Inbox(DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []

    def datagramReceived(self, data: bytes, addr: object) -> None:
        self.received.append(data)


class _Forward(DatagramProtocol):
    def __init__(self, inbox: _Inbox) -> None:
        self.inbox = inbox

    def datagramReceived(self, data: bytes, addr: object) -> None:
        self.inbox.received.append(data)


def _address(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return (host, int(port))


class ReplayTests(unittest.TestCase):
    def setUp(self) -> None:
        if not (VECTORS / "dht").is_dir():
            raise unittest.SkipTest(f"no vectors at {VECTORS}")
        index = json.loads((VECTORS / "dht" / "index.json").read_text())
        self.files = {int(e["file"][:2]): e["file"] for e in index}
        # "127.0.0.1:14442 -> 127.0.0.1:14441": who sent each capture
        self.sources = {int(e["file"][:2]): _address(e["udp"].split(" -> ")[0]) for e in index}

    def raw(self, number: int) -> bytes:
        return bytes.fromhex((VECTORS / "dht" / self.files[number]).read_text().strip())

    def test_answers_match_the_captures(self) -> None:
        grid = Grid()
        node = grid.add("127.0.0.1", 14441)
        node.advertised["stun_port"] = 8882
        # the capture's clock, so that originallyPublished comes out the same
        grid.clock.advance(1795608702 - grid.clock.seconds())
        inbox = _Inbox()
        peers = {}
        for request, answer in PAIRS:
            with self.subTest(request=request):
                source = self.sources[request]
                if source not in peers:
                    peers[source] = grid.net.listen(source, _Forward(inbox))
                peers[source].write(self.raw(request), ("127.0.0.1", 14441))
                grid.net.run(0.01)
                expected = self.raw(answer)
                header, body = datagram.unpack(expected)
                captured = message.decode(body)
                ours = message.decode(datagram.unpack(inbox.received[-1])[1])
                self.assertEqual(ours.sender_id, node.layer(ours.layer).node_id)
                # swap in the captured node's id, then compare the bytes
                swapped = message.from_dict({**ours.to_dict(), 2: captured.sender_id})
                self.assertEqual(datagram.pack(header, message.encode(swapped)), expected)

    def test_stun_answer_matches_capture(self) -> None:
        index = json.loads((VECTORS / "stun" / "index.json").read_text())
        asked = [e for e in index if e["ascii"] == "1s"]
        answered = [e for e in index if e["ascii"].startswith("1m")]
        self.assertTrue(asked and answered)
        host, port = answered[0]["ascii"][2:].rsplit(":", 1)
        self.assertEqual(stun.encode_reply(host, int(port)), answered[0]["ascii"].encode())
        self.assertFalse(stun.is_request(b"1x"))
