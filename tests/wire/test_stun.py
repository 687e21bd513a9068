"""The `1s`/`1m<ip>:<port>` datagrams, against the official captures."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.wire import stun

VECTORS = Path("/work/shared/vectors/stun")


class StunFormatTests(SynchronousTestCase):
    def test_every_captured_answer_parses_and_encodes_back_byte_for_byte(self) -> None:
        if not VECTORS.exists():
            self.skipTest("the official captures are not on this machine")
        for item in json.loads((VECTORS / "index.json").read_text()):
            data = bytes.fromhex((VECTORS / item["file"]).read_text().strip())
            if data == stun.REQUEST:
                self.assertTrue(stun.is_request(data))
                continue
            host, port = stun.parse_reply(data)
            self.assertEqual(stun.encode_reply(host, port), data)

    def test_bad_answers_are_refused(self) -> None:
        for bad in (b"", b"1s", b"1m", b"1m1.2.3.4", b"1m1.2.3.4:", b"1m1.2.3.4:70000", b"1m1.2.3.4:0",
                    b"1mhost:80", b"1m\xff:1", b"1m1.2.3.4:80" + b" " * 60, b"0m1.2.3.4:80"):
            with self.assertRaises(stun.StunFormatError, msg=repr(bad)):
                stun.parse_reply(bad)

    def test_ipv6(self) -> None:
        self.assertEqual(stun.parse_reply(b"1m2001:db8::1:8882"), ("2001:db8::1", 8882))

    @given(st.binary(max_size=80))
    def test_any_bytes_parse_or_are_refused_cleanly(self, data: bytes) -> None:
        try:
            _host, port = stun.parse_reply(data)
        except stun.StunFormatError:
            return
        self.assertTrue(0 < port < 65536)
