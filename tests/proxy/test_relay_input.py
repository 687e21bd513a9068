"""What a router and a routed user read out of RelayOut, RelayIn, RelayAck and RelayFail, as a hostile peer
damages it (deep nesting, huge numbers, odd unicode, truncations): RelayFormatError and nothing else."""

from __future__ import annotations

import functools

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.proxy import relay
from tests.identity.vectors import private_key
from tests.support.hostile_json import assert_only, damaged

ENVELOPE = relay.encode_envelope(relay.Envelope("http://h/a.xml", "http://h/b.xml", b'{"c":"x","p":"\xe9"}', True, 30))
RESULT = relay.encode_result(relay.result_for(relay.decode_envelope(ENVELOPE), "Data", "123", "route not exist"))


@functools.cache
def sealed() -> bytes:
    """One RelayOut payload (sealed once: hypothesis replays its examples on the same bytes)."""
    return relay.seal(ENVELOPE, relay.ROUTED_OUTGOING, "http://h/a.xml", private_key("bob").public_key(),
                      private_key("alice"))


class HostileRelayTests(SynchronousTestCase):
    def test_the_documents_read_back(self) -> None:
        self.assertEqual(relay.decode_envelope(ENVELOPE).response_timeout, 30)
        self.assertEqual(relay.decode_result(RESULT).error, "route not exist")

    @settings(max_examples=300, deadline=None)
    @given(st.data())
    def test_a_damaged_envelope_or_result_gives_only_the_relay_error(self, data: st.DataObject) -> None:
        assert_only(self, relay.decode_envelope, relay.RelayFormatError, data.draw(damaged(ENVELOPE)))
        assert_only(self, relay.decode_result, relay.RelayFormatError, data.draw(damaged(RESULT)))

    @settings(max_examples=100, deadline=None)
    @given(st.data())
    def test_a_damaged_sealed_payload_gives_only_the_relay_error(self, data: st.DataObject) -> None:
        bad = data.draw(damaged(sealed()))
        unseal = lambda raw: relay.unseal(raw, private_key("bob"), relay.ROUTED_OUTGOING)  # noqa: E731
        assert_only(self, unseal, relay.RelayFormatError, bad)

    def test_the_nesting_of_the_issue_is_a_relay_error(self) -> None:
        for decode in (relay.decode_envelope, relay.decode_result):
            self.assertRaises(relay.RelayFormatError, decode, b"[" * 5000)
            self.assertRaises(relay.RelayFormatError, decode, b'{"f":' + b"[" * 5000 + b"]" * 5000 + b"}")
