"""The UDP datagrams port's shell: answers `1s`, a few a second per sender, and hands the rest on."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.net.stun_port import ANSWERS_BURST, ANSWERS_PER_SECOND, StunPort


class FakeDatagrams:
    def __init__(self, fail: bool = False) -> None:
        self.written: list[tuple[bytes, Any]] = []
        self.fail = fail

    def write(self, data: bytes, addr: Any) -> None:
        if self.fail:
            raise OSError("Network is unreachable")
        self.written.append((data, addr))


class StunPortTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.port = StunPort(self.clock)
        self.transport = FakeDatagrams()
        self.port.makeConnection(self.transport)  # type: ignore[arg-type]

    def test_answers_the_address_a_request_came_from(self) -> None:
        self.port.datagramReceived(b"1s", ("203.0.113.5", 40001))
        self.assertEqual(self.transport.written, [(b"1m203.0.113.5:40001", ("203.0.113.5", 40001))])

    def test_a_sender_is_answered_a_few_times_a_second_not_more(self) -> None:
        for _ in range(ANSWERS_BURST + 5):
            self.port.datagramReceived(b"1s", ("198.51.100.1", 8882))
        self.assertEqual((self.port.answered, self.port.limited), (ANSWERS_BURST, 5))
        # another sender is not held back by the first
        self.port.datagramReceived(b"1s", ("198.51.100.2", 8882))
        self.assertEqual(self.port.answered, ANSWERS_BURST + 1)
        self.clock.advance(1 / ANSWERS_PER_SECOND)
        self.port.datagramReceived(b"1s", ("198.51.100.1", 8882))
        self.assertEqual(self.port.answered, ANSWERS_BURST + 2)

    def test_other_datagrams_go_to_the_listener_or_are_counted(self) -> None:
        self.port.datagramReceived(b"1m1.2.3.4:5", ("203.0.113.5", 8882))
        self.assertEqual(self.port.ignored, 1)
        heard: list[tuple[bytes, tuple[str, int]]] = []
        stop = self.port.listen_replies(lambda data, sender: heard.append((data, sender)))
        self.port.datagramReceived(b"1m1.2.3.4:5", ("203.0.113.5", 8882))
        self.assertEqual(heard, [(b"1m1.2.3.4:5", ("203.0.113.5", 8882))])
        stop()
        self.port.datagramReceived(b"junk", ("203.0.113.5", 8882))
        self.assertEqual((len(heard), self.port.ignored), (1, 2))

    def test_my_requests_and_a_write_that_fails(self) -> None:
        self.port.send_request(("203.0.113.5", 8882))
        self.assertEqual(self.transport.written, [(b"1s", ("203.0.113.5", 8882))])
        self.transport.fail = True
        self.port.send_request(("203.0.113.6", 8882))
        self.assertEqual((self.port.asked, self.port.send_failed), (2, 1))
