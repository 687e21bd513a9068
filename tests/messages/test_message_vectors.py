"""Every captured private message opens with the recipient's throwaway key; its typed-JSON body and its
ciphertext are reproduced byte for byte; messages sealed here open again."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.crypto import block, keys
from bitdust_node.messages import message as sealed
from bitdust_node.wire import packet as wire
from bitdust_node.wire import typed_json
from tests.identity.vectors import VECTORS

MESSAGES = VECTORS / "messages"


def key(doc_path: str) -> object:
    return keys.read_private_key((MESSAGES / doc_path).resolve())


class CapturedMessageTests(SynchronousTestCase):
    def test_every_captured_message(self) -> None:
        paths = sorted(MESSAGES.glob("[0-9]*.json"))
        self.assertEqual(len(paths), 5)
        for path in paths:
            doc = json.loads(path.read_text())
            packet = wire.parse(doc["packet_utf8"].encode())
            self.assertEqual(packet.command, "Message")
            self.assertTrue(packet.packet_id.startswith("private_"))
            box = sealed.parse(packet.payload)
            private = keys.read_private_key(Path(MESSAGES / doc["recipient_key"]).resolve())
            data = sealed.open_sealed(box, private)
            facts = doc["private_message"]
            self.assertEqual(data, facts["unpacked"], path.name)
            self.assertEqual((box.recipient_key_id, box.sender_key_id), (facts["r"], facts["s"]))
            self.assertEqual(typed_json.dumps(data), facts["plaintext_utf8"].encode(), path.name)
            session_key = bytes.fromhex(facts["session_key_hex"])
            iv = bytes.fromhex(facts["aes"]["iv_hex"])
            self.assertEqual(block.encrypt_data(typed_json.dumps(data), session_key, iv).decode(), facts["p_utf8"])


class SealTests(SynchronousTestCase):
    def test_seal_and_open(self) -> None:
        bob = keys.read_private_key(VECTORS / "p2p" / "keys" / "bob.THROWAWAY_TEST_KEY.pem")
        payload = sealed.seal({"message": "héllo", "n": 3, "tags": ["a", 1], "none": None},
                              "master$bob@h_8084", "master$alice@h_8084", bob.public_key())
        box = sealed.parse(payload)
        self.assertEqual(sealed.open_sealed(box, bob), {"message": "héllo", "n": 3, "tags": ["a", 1], "none": None})
        self.assertNotIn(b"llo", payload)
        self.assertEqual(sorted(json.loads(payload)), ["k", "p", "r", "s"])

    def test_unreadable_payloads_are_refused(self) -> None:
        alice = keys.read_private_key(VECTORS / "p2p" / "keys" / "alice.THROWAWAY_TEST_KEY.pem")
        bob = keys.read_private_key(VECTORS / "p2p" / "keys" / "bob.THROWAWAY_TEST_KEY.pem")
        for raw in (b"", b"[]", b'{"k": 1}', b"x" * (sealed.MAX_MESSAGE_PAYLOAD + 1)):
            self.assertRaises(sealed.MessageError, sealed.parse, raw)
        box = sealed.parse(sealed.seal({"m": "x"}, "r", "s", bob.public_key()))
        self.assertRaises(sealed.MessageError, sealed.open_sealed, box, alice)
        forged = sealed.SealedMessage("r", "s", box.wrapped_key, base64.b64encode(b"junk"))
        self.assertRaises(sealed.MessageError, sealed.open_sealed, forged, bob)


class TypedJsonTests(SynchronousTestCase):
    def test_round_trip_and_refusals(self) -> None:
        data = {"s": "t", "i": 1, "f": 1.5, "n": None, "d": {"x": [1, "y"]}, "b": b"raw"}
        self.assertEqual(typed_json.loads(typed_json.dumps(data)), data)
        for raw in (b"[]", b'{"a": [1, 2]}', b'{"a": ["s", "i", "x"]}', b'{"a": ["s", "l", [1]]}', b"\xff"):
            self.assertRaises(typed_json.TypedJsonError, typed_json.loads, raw)
        self.assertRaises(typed_json.TypedJsonError, typed_json.dumps, {"a": True})
