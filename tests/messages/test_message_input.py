"""A private message's payload and its typed-JSON body as a hostile peer damages them (deep nesting, huge
numbers, odd unicode, truncations): MessageError (TypedJsonError for the body alone) and nothing else."""

from __future__ import annotations

import functools
import os

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.crypto import block
from bitdust_node.messages import message as sealed
from bitdust_node.wire import typed_json
from tests.identity.vectors import private_key
from tests.support.hostile_json import assert_only, damaged

BODY = {"message": "hi \u00e9", "n": 3, "f": 1.5, "b": b"\x00ok", "none": None, "l": [1, ("t", 2)], "d": {"x": []}}


@functools.cache
def payload() -> bytes:
    """One sealed message to bob (sealed once: hypothesis replays its examples on the same bytes)."""
    return sealed.seal(BODY, "master$bob@h", "master$alice@h", private_key("bob").public_key())


class HostileMessageTests(SynchronousTestCase):
    def test_the_message_opens(self) -> None:
        self.assertEqual(sealed.open_sealed(sealed.parse(payload()), private_key("bob")), BODY)

    @settings(max_examples=300, deadline=None)
    @given(st.data())
    def test_a_damaged_payload_gives_only_the_message_error(self, data: st.DataObject) -> None:
        bad = data.draw(damaged(payload()))
        found = assert_only(self, sealed.parse, sealed.MessageError, bad)
        if isinstance(found, sealed.SealedMessage):
            assert_only(self, lambda _b: sealed.open_sealed(found, private_key("bob")), sealed.MessageError, bad)

    @settings(max_examples=400, deadline=None)
    @given(st.data())
    def test_a_damaged_body_gives_only_the_typed_json_error_and_sealed_the_message_error(
        self, data: st.DataObject,
    ) -> None:
        bad = data.draw(damaged(typed_json.dumps(BODY)))
        assert_only(self, typed_json.loads, typed_json.TypedJsonError, bad)
        session_key = os.urandom(16)
        box = sealed.SealedMessage("r", "s", block.wrap_key(private_key("bob").public_key(), session_key),
                                   block.encrypt_data(bad, session_key))
        assert_only(self, lambda _b: sealed.open_sealed(box, private_key("bob")), sealed.MessageError, bad)

    def test_the_nesting_of_the_issue_is_a_message_error(self) -> None:
        for bad in (b"[" * 5000, b'{"k":' + b"[" * 5000 + b"]" * 5000 + b"}"):
            self.assertRaises(sealed.MessageError, sealed.parse, bad)
            self.assertRaises(typed_json.TypedJsonError, typed_json.loads, bad)
        deep = b'{"a":["s","l",' + b'[{"i":["l",' * 2000 + b"[]" + b"]}]" * 2000 + b"]}"
        self.assertRaises(typed_json.TypedJsonError, typed_json.loads, deep)
