"""The fast reading and writing of lookup requests and answers (message_fast.py) agree with the reference
(message.py, the bencode codec) on every input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.dht import message, message_fast
from bitdust_node.dht.message import Request, Response
from bitdust_node.wire import bencode

hex_ids = st.text("0123456789abcdef", min_size=40, max_size=40)
odd_ids = st.one_of(hex_ids, st.text(min_size=0, max_size=45))
hosts = st.one_of(st.just("127.0.0.1"), st.text(max_size=120), st.sampled_from(["", "::1", "é", "e", "i1e"]))
ports = st.one_of(st.integers(1, 65535), st.integers(-5, 10), st.integers(65536, 10**7))
contacts = st.one_of(
    st.tuples(odd_ids, hosts, ports).map(list),
    st.tuples(odd_ids, hosts, ports, st.integers(0, 300)).map(list),
    st.lists(st.one_of(st.integers(0, 9), st.text(max_size=3)), max_size=5),
    st.text(max_size=5),
)
answers = st.builds(
    Response, hex_ids, odd_ids, st.lists(contacts, max_size=8), st.integers(-3, 300),
)
requests = st.builds(
    Request, hex_ids, odd_ids, st.sampled_from(["findNode", "findValue", "store", "ping", "findnode"]),
    st.one_of(st.tuples(hex_ids).map(list), st.lists(st.one_of(odd_ids, st.integers()), max_size=3)),
    st.integers(0, 300), st.booleans(),
)


def general(body: bytes) -> object:
    """What the bencode decoder makes of `body`: a message, or the class of its error."""
    try:
        return message.from_dict(bencode.decode(body))
    except (bencode.BencodeError, message.MessageError) as err:
        return type(err)


class FastAnswerTests(SynchronousTestCase):
    def test_a_typical_answer_is_read_the_fast_way(self) -> None:
        answer = Response("a" * 40, "b" * 40, [["c" * 40, "127.0.0.1", 14441, 0], ["d" * 40, "10.0.0.7", 80]], 2)
        body = message_fast.encode(answer)
        self.assertEqual(message_fast.read_contacts_response(body), answer)
        self.assertEqual(message_fast.decode(body), answer)

    @settings(max_examples=400, deadline=None)
    @given(answers)
    def test_agrees_with_the_decoder_on_answers(self, answer: Response) -> None:
        body = message_fast.encode(answer)
        fast = message_fast.read_contacts_response(body)
        if fast is not None:
            self.assertEqual(fast, general(body))

    @settings(max_examples=400, deadline=None)
    @given(answers, st.data())
    def test_agrees_with_the_decoder_on_damaged_answers(self, answer: Response, data: st.DataObject) -> None:
        body = bytearray(message_fast.encode(answer))
        for _ in range(data.draw(st.integers(1, 3))):
            at = data.draw(st.integers(0, len(body) - 1))
            action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
            if action == "flip":
                body[at] = data.draw(st.integers(0, 255))
            elif action == "cut":
                del body[at:]
                if not body:
                    return
            else:
                body[at:at] = data.draw(st.binary(min_size=1, max_size=3))
        fast = message_fast.read_contacts_response(bytes(body))
        if fast is not None:
            self.assertEqual(fast, general(bytes(body)))

    @settings(max_examples=300, deadline=None)
    @given(answers)
    def test_answers_are_written_as_the_encoder_writes_them(self, answer: Response) -> None:
        self.assertEqual(message_fast.encode(answer), bencode.encode(answer.to_dict()))

    @settings(max_examples=300, deadline=None)
    @given(requests)
    def test_requests_agree_with_the_decoder(self, request: Request) -> None:
        body = message_fast.encode(request)
        expected = general(body)
        fast = message_fast.read_lookup_request(body)
        if fast is not None:
            self.assertEqual(fast, expected)
        if not isinstance(expected, type):  # a valid request: decode() gives it, fast or not
            self.assertEqual(message_fast.decode(body), expected)

    def test_a_lookup_request_is_read_the_fast_way(self) -> None:
        for question in (False, True):
            request = Request("a" * 40, "b" * 40, "findValue", ["c" * 40], 3, question)
            self.assertEqual(message_fast.read_lookup_request(message_fast.encode(request)), request)
