"""Every captured DHT datagram decodes to its documented form and re-encodes byte for byte."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from twisted.trial import unittest

from bitdust_node.dht import datagram, message, message_fast
from bitdust_node.dht.message import ErrorReply, Request, Response

VECTORS = Path(os.environ.get("BITDUST_VECTORS", "/work/shared/vectors"))


def _captures() -> list[tuple[str, bytes, dict[str, object]]]:
    found = []
    index = json.loads((VECTORS / "dht" / "index.json").read_text())
    for entry in index:
        raw = bytes.fromhex((VECTORS / "dht" / entry["file"]).read_text().strip())
        found.append((entry["file"], raw, entry["decoded"]["message"]))
    for path in sorted((VECTORS / "dht_probe").glob("*.json")):
        probe = json.loads(path.read_text())
        if "request_hex" not in probe:
            continue
        for side in ("request", "response"):
            raw = bytes.fromhex(probe[f"{side}_hex"])
            found.append((f"{path.name}:{side}", raw, probe[f"{side}_decoded"]))
    return found


class VectorTests(unittest.TestCase):
    def setUp(self) -> None:
        if not (VECTORS / "dht").is_dir():
            raise unittest.SkipTest(f"no vectors at {VECTORS}")
        self.captures = _captures()

    def test_enough_vectors(self) -> None:
        self.assertGreaterEqual(len(self.captures), 40)

    def test_decode_and_reencode_byte_for_byte(self) -> None:
        for codec in (message, message_fast):  # the reference, and the fast paths the node runs
            for name, raw, expected in self.captures:
                with self.subTest(codec=codec.__name__, name=name):
                    header, body = datagram.unpack(raw)
                    self.assertEqual((header.total, header.seq), (1, 0))
                    decoded = codec.decode(body)
                    self.assertEqual(decoded.msg_id, header.rpc_id)
                    # JSON turns integer keys into strings, as the index does
                    self.assertEqual(json.loads(json.dumps(decoded.to_dict())), expected)
                    self.assertEqual(datagram.pack(header, codec.encode(decoded)), raw)

    def test_typed_forms(self) -> None:
        by_name = {name: message.decode(datagram.unpack(raw)[1]) for name, raw, _ in self.captures}
        question = by_name["09_findNode_empty_QUESTION_layer9_request.hex"]
        assert isinstance(question, Request)
        self.assertTrue(question.question)
        self.assertEqual(question.layer, 9)
        error = by_name["26_noSuchMethod_layer0_response.hex"]
        assert isinstance(error, ErrorReply)
        self.assertEqual(
            (error.error_type, error.text),
            ("builtins.AttributeError", "Invalid method: noSuchMethod"),
        )
        stun = by_name["08_request_layer0_response.hex"]
        assert isinstance(stun, Response)
        self.assertEqual(stun.payload, {"stun_port": 8882, 0: 0})


class MessageTests(unittest.TestCase):
    def test_missing_layer_reads_as_zero(self) -> None:
        body = b"di0ei1ei1e40:" + b"a" * 40 + b"i2e40:" + b"b" * 40 + b"i3ed1:xi1eee"
        decoded = message.decode(body)
        assert isinstance(decoded, Response)
        self.assertEqual((decoded.layer, decoded.payload), (0, {"x": 1}))

    def test_invalid_messages(self) -> None:
        good: dict[int, Any] = {0: 0, 1: "a" * 40, 2: "b" * 40, 3: "ping", 4: [], 5: 0}
        message.from_dict(good)
        changes: list[dict[int, Any]] = [
            {0: 7},
            {1: "zz"},
            {2: 5},
            {5: -1},
            {5: 1000},
            {3: 5},
            {4: "x"},
        ]
        for change in changes:
            with self.subTest(change=change):
                self.assertRaises(message.MessageError, message.from_dict, {**good, **change})
        self.assertRaises(message.MessageError, message.from_dict, [1])
        self.assertRaises(
            message.MessageError,
            message.from_dict,
            {k: v for k, v in good.items() if k != 3},
        )
