"""Encrypted blocks as official nodes make them: every captured block (RelayIn, RelayOut, RelayAck, Files,
catalog Data) parses, re-serializes byte for byte, carries a valid creator signature, opens with the
recipient's key, and re-encrypts to the same ciphertext with the same session key and IV."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.crypto import block as blocks
from bitdust_node.crypto import keys
from bitdust_node.wire import packet as wire
from tests.identity.vectors import VECTORS
from tests.support.hostile_json import assert_only, damaged


def key_of(scenario: str, name: str) -> Any:
    return keys.read_private_key(VECTORS / scenario / "keys" / f"{name}.THROWAWAY_TEST_KEY.pem")


def captured_blocks() -> Iterator[tuple[str, str, bytes, dict[str, Any]]]:
    for scenario in ("p2p", "proxy", "storage"):
        for path in sorted((VECTORS / scenario / "packets").glob("*.json")):
            doc = json.loads(path.read_text())
            decoded = doc["decoded"].get("payload")
            if isinstance(decoded, dict) and decoded.get("kind") == "encrypted_block":
                payload = wire.parse(doc["raw_utf8"].encode()).payload
                yield scenario, path.name, payload, decoded


def expected_plaintext(plain: dict[str, Any]) -> bytes | None:
    if "raw_utf8" in plain:
        return str(plain["raw_utf8"]).encode("utf-8")
    if "text" in plain:
        return str(plain["text"]).encode("utf-8")
    if "hex" in plain:
        return bytes.fromhex(plain["hex"])
    if "utf8" in plain:
        return str(plain["utf8"]).encode("utf-8")
    return None


class CapturedBlockTests(SynchronousTestCase):
    def test_every_captured_block(self) -> None:
        count = 0
        for scenario, where, payload, facts in captured_blocks():
            block = blocks.parse_block(payload)
            self.assertEqual(blocks.serialize_block(block), payload, where)
            self.assertEqual((block.backup_id, block.length), (facts["BackupID"], facts["Length"]), where)
            signer = key_of(scenario, facts["block_signature_key"])
            self.assertTrue(blocks.block_signature_valid(block, signer.public_key()), where)
            recipient = key_of(scenario, facts["session_key_decrypted_with"])
            session_key = blocks.unwrap_key(recipient, block.wrapped_key)
            self.assertEqual(session_key.hex(), facts["session_key_hex"], where)
            plaintext = blocks.open_block(block, recipient)
            expected = expected_plaintext(facts["plaintext"])
            if expected is not None:
                self.assertEqual(plaintext, expected, where)
            iv = base64.b64decode(json.loads(block.encrypted_data)["iv"])
            self.assertEqual(blocks.encrypt_data(plaintext, session_key, iv).decode(), block.encrypted_data, where)
            count += 1
        self.assertEqual(count, 39)

    def test_the_wrong_key_does_not_open_a_block(self) -> None:
        scenario, _where, payload, facts = next(captured_blocks())
        block = blocks.parse_block(payload)
        other = "alice" if facts["session_key_decrypted_with"] != "alice" else "bob"
        self.assertRaises(blocks.BlockError, blocks.open_block, block, key_of(scenario, other))


class MadeBlockTests(SynchronousTestCase):
    def test_make_open_and_sign(self) -> None:
        alice, bob = key_of("proxy", "alice"), key_of("proxy", "bob")
        made = blocks.make_block(b"\x00secret\xff" * 100, "http://127.0.0.1:8084/alice.xml",
                                 "routed incoming data", bob.public_key(), alice)
        again = blocks.parse_block(blocks.serialize_block(made))
        self.assertEqual(again, made)
        self.assertTrue(blocks.block_signature_valid(again, alice.public_key()))
        self.assertFalse(blocks.block_signature_valid(again, bob.public_key()))
        self.assertEqual(blocks.open_block(again, bob), b"\x00secret\xff" * 100)
        self.assertNotIn(b"secret", blocks.serialize_block(made))

    def test_tampered_length_and_bad_json_are_refused(self) -> None:
        alice, bob = key_of("proxy", "alice"), key_of("proxy", "bob")
        made = blocks.make_block(b"hello", "c", "b", bob.public_key(), alice)
        fields = json.loads(blocks.serialize_block(made))
        fields["l"] = 6
        lying = blocks.parse_block(json.dumps(fields).encode())
        self.assertRaises(blocks.BlockError, blocks.open_block, lying, bob)
        for raw in (b"", b"[]", b"{}", json.dumps({**fields, "l": "6"}).encode(),
                    json.dumps({**fields, "k": "***"}).encode()):
            self.assertRaises(blocks.BlockError, blocks.parse_block, raw)
        self.assertRaises(blocks.BlockError, blocks.parse_block, b"x" * 100, max_bytes=10)


class FastBlockTests(SynchronousTestCase):
    @settings(max_examples=200, deadline=None)
    @given(st.text(max_size=30), st.text(max_size=30), st.booleans(), st.binary(max_size=40),
           st.integers(0, 2**40), st.integers(0, 2**20), st.text(max_size=60))
    def test_serialize_block_writes_what_the_json_encoder_writes(
        self, backup: str, creator: str, last: bool, wrapped: bytes, length: int, number: int, data: str,
    ) -> None:
        block = blocks.Block(backup, creator, number, last, "AES", wrapped, length, data, "123")
        expected = blocks.compact({
            "b": backup, "c": creator, "e": last, "k": base64.b64encode(wrapped).decode(), "l": length,
            "n": number, "p": data, "s": "123", "t": "AES",
        })
        self.assertEqual(blocks.serialize_block(block), expected)
        # and read back the same, by the hand-cut path or the JSON decoder
        self.assertEqual(blocks.parse_block(expected), block)
        spaced = json.dumps(json.loads(expected)).encode()
        self.assertEqual(blocks.parse_block(spaced), block)

    @settings(max_examples=100, deadline=None)
    @given(st.binary(max_size=100))
    def test_encrypted_data_round_trips_and_matches_the_json_layout(self, plaintext: bytes) -> None:
        key, iv = b"k" * 16, b"i" * 16
        made = blocks.encrypt_data(plaintext, key, iv)
        fields = json.loads(made)
        self.assertEqual(made, blocks.compact(fields))
        self.assertEqual(blocks.decrypt_data(made, key), plaintext)
        self.assertEqual(blocks.decrypt_data(json.dumps(fields).encode(), key), plaintext)  # spaced JSON too

    def test_tampered_padding_is_refused(self) -> None:
        key = b"k" * 16
        made = json.loads(blocks.encrypt_data(b"x" * 20, key, b"i" * 16))
        ct = bytearray(base64.b64decode(made["ct"]))
        ct[-1] ^= 0xFF
        made["ct"] = base64.b64encode(bytes(ct)).decode()
        self.assertRaises(blocks.BlockError, blocks.decrypt_data, blocks.compact(made), key)

    def test_a_large_block_is_written_and_read_as_the_json_encoder_would(self) -> None:
        alice, bob = key_of("proxy", "alice"), key_of("proxy", "bob")
        made = blocks.make_block(bytes(range(256)) * 1024, "http://127.0.0.1:8084/alice.xml", "routed incoming data",
                                 bob.public_key(), alice)
        expected = blocks.compact({
            "b": made.backup_id, "c": made.creator_id, "e": made.last_block,
            "k": base64.b64encode(made.wrapped_key).decode(), "l": made.length, "n": made.block_number,
            "p": made.encrypted_data, "s": made.signature, "t": made.session_key_type,
        })
        self.assertEqual(blocks.serialize_block(made), expected)
        self.assertEqual(blocks.parse_block(expected), made)
        self.assertEqual(blocks.open_block(made, bob), bytes(range(256)) * 1024)


class HostileBlockTests(SynchronousTestCase):
    """A block or its EncryptedData as a hostile peer damages it (deep nesting, huge numbers, odd unicode,
    truncations): BlockError and nothing else, from the fast path and the decoder alike."""

    @settings(max_examples=300, deadline=None)
    @given(st.data())
    def test_a_damaged_block_gives_only_the_block_error(self, data: st.DataObject) -> None:
        _scenario, _where, payload, _facts = next(captured_blocks())
        bad = data.draw(damaged(payload))
        assert_only(self, blocks.parse_block, blocks.BlockError, bad)
        assert_only(self, blocks.parse_block, blocks.BlockError, json.dumps(json.loads(payload)).encode()[:-1] + bad)

    @settings(max_examples=300, deadline=None)
    @given(st.data())
    def test_damaged_encrypted_data_gives_only_the_block_error(self, data: st.DataObject) -> None:
        made = blocks.encrypt_data(b"x" * 40, b"k" * 16, b"i" * 16)
        bad = data.draw(damaged(made))
        assert_only(self, lambda raw: blocks.decrypt_data(raw, b"k" * 16), blocks.BlockError, bad)
        alice, bob = key_of("proxy", "alice"), key_of("proxy", "bob")
        block = blocks.make_block(b"hello", "c", "b", bob.public_key(), alice)
        lying = attrs.evolve(block, encrypted_data=bad.decode("utf-8", "replace"))
        assert_only(self, lambda _raw: blocks.open_block(lying, bob), blocks.BlockError, bad)

    def test_the_nesting_of_the_issue_is_a_block_error(self) -> None:
        for bad in (b"[" * 5000, b'{"b":"x","p":"","s":"' + b"[" * 5000, b'{"ct":' + b"[" * 5000):
            self.assertRaises(blocks.BlockError, blocks.parse_block, bad)
            self.assertRaises(blocks.BlockError, blocks.decrypt_data, bad, b"k" * 16)
