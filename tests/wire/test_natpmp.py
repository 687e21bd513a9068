"""NAT-PMP datagrams as RFC 6886 lays them out."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.wire import natpmp


class NatPmpFormatTests(SynchronousTestCase):
    def test_requests(self) -> None:
        self.assertEqual(natpmp.external_request(), b"\x00\x00")
        self.assertEqual(natpmp.map_request("TCP", 7771, 7771, 3600), bytes.fromhex("00020000 1e5b 1e5b 00000e10"))
        self.assertEqual(natpmp.map_request("UDP", 14441, 0, 0), bytes.fromhex("00010000 3869 0000 00000000"))

    def test_answers(self) -> None:
        self.assertEqual(natpmp.parse_external(bytes.fromhex("0080 0000 0000003c 0b000016")),
                         natpmp.ExternalAnswer(60, "11.0.0.22"))
        self.assertEqual(natpmp.parse_map(bytes.fromhex("0082 0000 0000003c 1e5b 1e5b 00000e10"), "TCP"),
                         natpmp.MapAnswer(60, 7771, 7771, 3600))

    def test_refusals_and_strangers_are_errors(self) -> None:
        with self.assertRaisesRegex(natpmp.NatPmpError, "refused"):
            natpmp.parse_map(bytes.fromhex("0082 0002 0000003c 1e5b 0000 00000000"), "TCP")
        for bad in (b"", bytes.fromhex("0081 0000 0000003c 1e5b 1e5b 00000e10"),  # the UDP answer, TCP asked
                    bytes.fromhex("0182 0000 0000003c 1e5b 1e5b 00000e10"), b"\x00\x80" + b"\x00" * 20):
            with self.assertRaises(natpmp.NatPmpError):
                natpmp.parse_map(bad, "TCP")

    @given(st.binary(max_size=40))
    def test_any_bytes_parse_or_are_refused_cleanly(self, data: bytes) -> None:
        for parse in (natpmp.parse_external, lambda d: natpmp.parse_map(d, "UDP")):
            try:
                parse(data)
            except natpmp.NatPmpError:
                pass
