"""Every signed packet the official nodes sent (vectors p2p/, proxy/, storage/, tcp_transport/, nested ones
too) parses, verifies, re-signs and re-serializes byte for byte; packets built here pass an independent
checker written from PROTOCOL-P2P.md section 2 (textbook RSA, no `cryptography` verify)."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import Iterator
from typing import Any
from unittest import mock

import attrs
import pybase64
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.crypto import keys
from bitdust_node.crypto.packet_signing import packet_signature_valid, sign_packet
from bitdust_node.wire import packet as wire
from bitdust_node.wire import packet_fast as fast
from tests.identity.vectors import VECTORS
from tests.support.hostile_json import assert_only, damaged

SCENARIOS = ("p2p", "proxy", "storage")
# DER prefix of a SHA-1 DigestInfo (RFC 8017 section 9.2, note 1)
SHA1_DIGEST_INFO = bytes.fromhex("3021300906052b0e03021a05000414")


def scenario_key(scenario: str, key_id: str) -> Any:
    name = key_id.split("$", 1)[-1].split("@", 1)[0]
    return keys.read_private_key(VECTORS / scenario / "keys" / f"{name}.THROWAWAY_TEST_KEY.pem")


def nested_raw(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "raw_utf8" and isinstance(item, str):
                yield item
            else:
                yield from nested_raw(item)
    elif isinstance(value, list):
        for item in value:
            yield from nested_raw(item)


def captured_packets() -> Iterator[tuple[str, str, bytes]]:
    """(scenario, where, raw bytes) of every captured packet."""
    for scenario in SCENARIOS:
        for path in sorted((VECTORS / scenario / "packets").glob("*.json")):
            doc = json.loads(path.read_text())
            yield scenario, path.name, doc["raw_utf8"].encode("utf-8")
            for inner in nested_raw(doc["decoded"]):
                yield scenario, f"{path.name} (nested)", inner.encode("utf-8")


def independent_check(raw: bytes, public_numbers: Any) -> bool:
    """Section 2 read literally: json fields, the dash-joined text, SHA-1 twice, PKCS#1 v1.5 padding."""
    fields = json.loads(raw)
    as_bytes = {k: v.encode("latin-1") for k, v in fields.items()}
    text = b"-".join(as_bytes[k] for k in ("m", "o", "c", "i", "d", "p", "r", "k"))
    h = hashlib.sha1(text).digest()
    n, e = public_numbers.n, public_numbers.e
    size = (n.bit_length() + 7) // 8
    digest_info = SHA1_DIGEST_INFO + hashlib.sha1(h).digest()
    expected = b"\x00\x01" + b"\xff" * (size - len(digest_info) - 3) + b"\x00" + digest_info
    recovered = pow(int(fields["s"]), e, n).to_bytes(size, "big")
    compact = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    return recovered == expected and compact == raw


class CapturedPacketTests(SynchronousTestCase):
    def test_every_captured_packet_round_trips_and_verifies(self) -> None:
        seen = 0
        for scenario, where, raw in captured_packets():
            packet = fast.parse(raw)
            self.assertEqual(fast.serialize(packet), raw, where)
            # the reference codec reads and writes the same bytes
            self.assertEqual(wire.parse(raw), packet, where)
            self.assertEqual(wire.serialize(packet), raw, where)
            key = scenario_key(scenario, packet.key_id)
            self.assertTrue(packet_signature_valid(packet, key.public_key()), where)
            # PKCS#1 v1.5 is deterministic: re-signing gives the captured signature
            self.assertEqual(sign_packet(packet, key).signature, packet.signature, where)
            self.assertTrue(independent_check(raw, key.public_key().public_numbers()), where)
            seen += 1
        self.assertGreaterEqual(seen, 195 + 23)

    def test_tcp_transport_capture_packets(self) -> None:
        found = 0
        for frames_file in sorted((VECTORS / "tcp_transport").glob("*.frames.json")):
            streams = json.loads(frames_file.read_text())
            for frame in streams["c2s"] + streams["s2c"]:
                data = frame.get("data_utf8")
                if frame.get("command") != "d" or not data:
                    continue
                raw = data.encode("utf-8")
                packet = fast.parse(raw)
                self.assertEqual(fast.serialize(packet), raw)
                found += 1
        self.assertEqual(found, 6)

    def test_a_changed_byte_breaks_the_signature(self) -> None:
        scenario, _where, raw = next(captured_packets())
        packet = fast.parse(raw)
        public = scenario_key(scenario, packet.key_id).public_key()
        for field in ("payload", "packet_id", "remote_id", "key_id", "date"):
            changed = attrs.evolve(packet, **{field: getattr(packet, field) + (b"x" if field == "payload" else "x")})
            self.assertFalse(packet_signature_valid(changed, public), field)


class BuiltPacketTests(SynchronousTestCase):
    def test_a_packet_built_here_passes_the_independent_checker(self) -> None:
        key = scenario_key("p2p", "master$alice@x")
        built = sign_packet(
            wire.Packet(
                command="Message",
                owner_id="http://127.0.0.1:8084/alice.xml",
                creator_id="http://127.0.0.1:8084/alice.xml",
                packet_id="private_" + wire.UniqueIds(1_795_000_000.0, random.Random(1)).next(),
                date=wire.packet_date(1_795_000_000.0),
                payload=bytes(range(256)) + "é".encode(),
                remote_id="http://127.0.0.1:8084/bob.xml",
                key_id="master$alice@127.0.0.1_8084",
            ),
            key,
        )
        raw = fast.serialize(built)
        self.assertIn(b"\\u00ff", raw)
        self.assertIn(b"\\u007f", raw)
        self.assertTrue(independent_check(raw, key.public_key().public_numbers()))
        self.assertEqual(fast.parse(raw), built)

    def test_date_and_ids_look_like_the_official_ones(self) -> None:
        self.assertEqual(wire.packet_date(1_795_608_724.0), "2026/11/25 12:12:04 PM")
        self.assertEqual(wire.packet_date(1_795_608_724.0 - 12 * 3600), "2026/11/25 12:12:04 AM")
        ids = wire.UniqueIds(1_796_154_995.0)
        first, second = ids.next(), ids.next()
        self.assertRegex(first, r"^\d{1,3}179615499501$")
        self.assertTrue(second.endswith("179615499502"))


def _verdict(parse: Any, data: bytes) -> object:
    """What a parser makes of `data`: the packet, or the refusal."""
    try:
        return parse(data)
    except wire.PacketFormatError:
        return wire.PacketFormatError


class FastSerializerTests(SynchronousTestCase):
    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=300), st.text(alphabet=st.characters(max_codepoint=255), max_size=40))
    def test_fast_serializer_writes_what_json_dumps_writes(self, payload: bytes, text: str) -> None:
        packet = wire.Packet("Data", text, "http://h/a.xml", text + '"\\', "d", payload, "r", text, "123")
        self.assertEqual(fast.serialize(packet), wire.serialize(packet))
        self.assertEqual(fast.parse(fast.serialize(packet)), packet)
        self.assertEqual(wire.parse(fast.serialize(packet)), packet)

    def test_a_base64_payload_is_handed_on_not_copied(self) -> None:
        payload = base64.b64encode(bytes(range(256)) * 40)
        packet = wire.Packet("Data", "o", "c", "i", "d", payload, "r", "k", "1")
        head, body, tail = fast.serialize_parts(packet)
        self.assertIs(body, payload)
        self.assertEqual(head + body + tail, wire.serialize(packet))

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=5000))
    def test_a_payload_marked_base64_frames_as_json_writes_it_without_a_check(self, share: bytes) -> None:
        payload = base64.b64encode(share)
        marked = wire.Packet("Data", "o", "c", "i", "d", payload, "r", "k", "1", payload_is_base64=True)
        with mock.patch.object(fast, "_is_base64", wraps=fast._is_base64) as check:
            head, body, tail = fast.serialize_parts(marked)
        self.assertIs(body, payload)
        self.assertEqual(head + body + tail, wire.serialize(marked))
        self.assertFalse(any(call.args[0] is payload for call in check.call_args_list))
        # the mark is how it was made, not what it is: a parsed packet equals the one sent, and says False
        parsed = fast.parse(head + body + tail)
        self.assertEqual(parsed, marked)
        self.assertFalse(parsed.payload_is_base64)

    @settings(max_examples=1000, deadline=None)
    @given(st.binary(max_size=60),
           st.lists(st.tuples(st.integers(min_value=0), st.sampled_from(b"=A-_ \n\"\\\x00\xff")), max_size=3),
           st.integers(min_value=0, max_value=3))
    def test_base64_checked_in_slices_agrees_with_one_strict_decode(
        self, data: bytes, changes: list[tuple[int, int]], trim: int,
    ) -> None:
        # slices of 8 characters and no minimum length: slice borders everywhere in short values
        text = bytearray(base64.b64encode(data)[: max(0, len(base64.b64encode(data)) - trim)])
        for where, byte in changes:
            if text:
                text[where % len(text)] = byte
        value = bytes(text)
        try:
            # the same decoder whole: the stdlib's, even in strict mode, lets padding past a quantum by (b"AAAA====")
            whole = len(value) % 4 == 0 and bool(pybase64.b64decode(value, validate=True) or True)
        except ValueError:
            whole = False
        with mock.patch.object(fast, "_BASE64_CHECK_STEP", 8), mock.patch.object(fast, "_BASE64_CHECK_FROM", 0):
            self.assertEqual(fast._is_base64(value), whole, value)

    def test_the_fast_parser_takes_every_captured_packet(self) -> None:
        # the captures are all in the plain layout; if the fast path refused them it would only be slow
        taken = [fast._parse_plain(raw) is not None for _s, _w, raw in captured_packets() if b"\\" not in raw]
        self.assertTrue(taken and all(taken))

    @settings(max_examples=800, deadline=None)
    @given(st.text(alphabet='abr"\\/nu0{}:,', max_size=60))
    def test_fast_parser_agrees_with_json_on_any_escapes_in_the_payload(self, body: str) -> None:
        good = fast.serialize(wire.Packet("Ack", "o", "c", "i", "d", b"PAYLOAD", "r", "k", "1"))
        data = good.replace(b"PAYLOAD", body.encode())
        self.assertEqual(_verdict(fast.parse, data), _verdict(wire.parse, data), data)

    @settings(max_examples=60, deadline=None)
    @given(st.sampled_from(['"', "\\", '\\"', '","r":"', "\n", "\u0000", "\xe9", "=", ""]),
           st.integers(0, 20_000))
    def test_a_block_as_payload_takes_the_fast_path_and_agrees_with_json(self, insert: str, at: int) -> None:
        # a relayed packet's payload: a block's JSON, escapes around a long base64 run
        ct = base64.b64encode(bytes(range(256)) * 60).decode()
        block = '{"b":"routed incoming data","p":"{\\"ct\\":\\"' + ct + '\\",\\"iv\\":\\"QUJD\\"}","s":"12"}'
        payload = (block[:at] + insert + block[at:]).encode("latin-1")
        packet = wire.Packet("RelayIn", "http://h/r.xml", "http://h/r.xml", "i", "d", payload, "http://h/b.xml", "k",
                             "123")
        data = fast.serialize(packet)
        self.assertEqual(data, wire.serialize(packet))
        self.assertEqual(fast.parse(data), packet)
        if insert in ("", "=", '"', "\\"):
            self.assertIsNotNone(fast._parse_plain(data))  # printable ASCII: never the JSON decoder
        tampered = data.replace(b"QUJD", insert.encode("latin-1") + b"QUJD")
        for bad in (tampered, data.replace(b'\\"ct', b'"ct')):
            self.assertEqual(_verdict(fast.parse, bad), _verdict(wire.parse, bad), bad[:200])

    @settings(max_examples=500, deadline=None)
    @given(st.binary(max_size=300))
    def test_fast_parser_agrees_with_json_on_any_bytes(self, tail: bytes) -> None:
        good = fast.serialize(wire.Packet("Ack", "o", "c", "i", "d", b"payload", "r", "k", "1"))
        for data in (tail, good[: len(tail) % len(good)] + tail, good.replace(b"payload", tail)):
            self.assertEqual(_verdict(fast.parse, data), _verdict(wire.parse, data), data)


class PieceParserTests(SynchronousTestCase):
    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=300), st.sampled_from(["", '"', "\\", '","r":"', "\n", "\xe9", "x"]), st.integers(0, 400))
    def test_a_piece_read_without_its_payload_agrees_with_the_parser(self, share: bytes, insert: str, at: int) -> None:
        text = base64.b64encode(share).decode()
        payload = (text[:at] + insert + text[at:]).encode("latin-1")
        data = fast.serialize(wire.Packet("Data", "o", "c", "k:p/F1/0-1-Data", "d", payload, "r", "k", "12"))
        found = fast.parse_piece(data)
        assert found is not None  # the fields are in the official layout whatever the payload holds
        packet, view = found
        whole = fast.parse(data)
        self.assertEqual(attrs.evolve(packet, payload=whole.payload), whole)
        self.assertEqual(packet.payload, b"")
        # the view is the payload's JSON text: the payload itself where it needs no escapes (any base64 piece)
        self.assertEqual(bytes(view) == whole.payload, not payload.translate(None, fast._PLAIN))

    def test_a_piece_signed_by_me_checks_out_from_its_view_and_a_changed_byte_does_not(self) -> None:
        key = scenario_key("storage", "master$dave@x")
        packet = sign_packet(wire.Packet("Data", "o", "c", "k:p/F1/0-1-Data", "d", base64.b64encode(b"share" * 99),
                                         "r", "k"), key)
        data = fast.serialize(packet)
        found = fast.parse_piece(data)
        assert found is not None
        self.assertTrue(packet_signature_valid(found[0], key.public_key(), found[1]))
        changed = bytearray(data)
        changed[data.index(b"c2hh") + 1] ^= 0x01
        found = fast.parse_piece(bytes(changed))
        assert found is not None
        self.assertFalse(packet_signature_valid(found[0], key.public_key(), found[1]))

    def test_fields_out_of_the_official_layout_are_left_to_the_parser(self) -> None:
        data = fast.serialize(wire.Packet("Data", "o", "c", "i", "d", b"QUJD", "r", "k", "1"))
        self.assertIsNone(fast.parse_piece(data.replace(b'{"c":', b'{ "c":')))
        self.assertIsNone(fast.parse_piece(data[:-1]))


def _chunked(data: bytes, cuts: list[int]) -> list[bytes | memoryview]:
    """`data` cut where `cuts` say, as views of it (how a connection hands a received file on)."""
    view, at, chunks = memoryview(data), 0, []
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        if cut > at:
            chunks.append(view[at:cut])
            at = cut
    return chunks


class ChunkedFileTests(SynchronousTestCase):
    @settings(max_examples=600, deadline=None)
    @given(st.binary(max_size=300), st.sampled_from(["", '"', "\\", '","r":"', ',"p":"', "\n", "\xe9"]),
           st.integers(0, 400), st.lists(st.integers(0, 10_000), max_size=6), st.integers(0, 2))
    def test_a_file_in_chunks_parses_as_the_file_joined(
        self, share: bytes, insert: str, at: int, cuts: list[int], damage: int,
    ) -> None:
        payload = base64.b64encode(share)
        payload = payload[:at] + insert.encode("latin-1") + payload[at:]
        data = fast.serialize(wire.Packet("Data", "http://h/o.xml", "http://h/c.xml", "k:p/F1/0-0-Data", "d",
                                          payload, "http://h/r.xml", "k", "12345"))
        if damage == 1:
            data = data[:-1]  # no closing brace
        elif damage == 2:
            data = data.replace(b'"m":"Data"', b'"m":"Data" ')
        # edges of 16 bytes: the head and the tail cross chunks, the payload spans many
        with mock.patch.object(fast, "_EDGE", 16):
            found = _verdict(lambda d: fast.parse_file(_chunked(d, cuts)), data)
        expected = _verdict(fast.parse, data)
        if expected is wire.PacketFormatError:
            self.assertIs(found, wire.PacketFormatError)
            return
        assert isinstance(found, tuple)
        packet, raw = found
        self.assertEqual(packet, expected)
        self.assertEqual(b"".join(raw) if isinstance(raw, tuple) else raw, data)

    def test_a_piece_sized_file_is_split_around_its_payload_which_is_copied_once(self) -> None:
        payload = base64.b64encode(bytes(range(256)) * 8000)
        data = fast.serialize(wire.Packet("Data", "o", "c", "i", "d", payload, "r", "k", "1"))
        packet, raw = fast.parse_file(_chunked(data, list(range(0, len(data), 16_384))))
        self.assertEqual(packet.payload, payload)
        assert isinstance(raw, tuple)
        self.assertIs(raw[1], packet.payload)  # the payload is the file's text: one copy for both
        self.assertEqual(b"".join(raw), data)
        self.assertLess(len(raw[0]) + len(raw[2]), 1000)

    def test_an_oversize_file_in_chunks_is_refused_before_it_is_joined(self) -> None:
        chunks = [memoryview(bytes(1 << 20))] * (wire.MAX_PACKET_BYTES // (1 << 20) + 1)
        self.assertRaises(wire.PacketFormatError, fast.parse_file, chunks)


class RefusalTests(SynchronousTestCase):
    def test_bad_inputs_are_refused_with_a_clear_error(self) -> None:
        good = json.loads(next(captured_packets())[2])
        cases = [
            b"",
            b"\xff\xfe",
            b"[1, 2]",
            json.dumps({**good, "x": "1"}).encode(),
            json.dumps({k: v for k, v in good.items() if k != "s"}).encode(),
            json.dumps({**good, "s": 12}).encode(),
            json.dumps({**good, "p": "\u20ac"}).encode(),
            json.dumps({**good, "m": "Transfer"}).encode(),
        ]
        for raw in cases:
            self.assertRaises(wire.PacketFormatError, fast.parse, raw)

    def test_size_cap_is_checked_before_parsing(self) -> None:
        with self.assertRaises(wire.PacketFormatError) as caught:
            fast.parse(b"{" * 2000, max_bytes=1000)
        self.assertIn("over the cap", str(caught.exception))

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=400))
    def test_any_bytes_raise_only_the_format_error(self, data: bytes) -> None:
        try:
            fast.parse(data)
        except wire.PacketFormatError:
            pass


class HostileInputTests(SynchronousTestCase):
    """Deep nesting, huge numbers, odd unicode and truncations of a real packet: the format error and nothing
    else, from the fast parser and the reference alike, and the two agree."""

    @settings(max_examples=400, deadline=None)
    @given(st.data())
    def test_a_damaged_packet_gives_only_the_format_error_and_both_parsers_agree(self, data: st.DataObject) -> None:
        _scenario, _what, raw = next(captured_packets())
        bad = data.draw(damaged(raw))
        for parse in (fast.parse, wire.parse, lambda b: fast.parse_file([b[:7], b[7:]])[0]):
            assert_only(self, parse, wire.PacketFormatError, bad)
        self.assertEqual(_verdict(fast.parse, bad), _verdict(wire.parse, bad), bad[:200])

    def test_the_nesting_of_the_issue_is_malformed_not_a_crash(self) -> None:
        for bad in (b"[" * 5000, b'{"c":' + b"[" * 5000, b"[" * 100_000 + b"]" * 100_000):
            with self.assertRaises(wire.PacketFormatError):
                fast.parse(bad)
