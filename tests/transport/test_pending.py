"""Answers awaited by PacketID: matched as 3.2 says, timed out on the clock, bounded, failed and cancelled."""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.transport.interfaces import Timeout
from bitdust_node.transport.pending import Awaited, PendingFull, PendingReplies

BOB = "http://127.0.0.1:8084/bob.xml"
CAROL = "http://127.0.0.1:8084/carol.xml"


class PendingRepliesTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.expired: list[str] = []
        self.pending: PendingReplies[str] = PendingReplies(self.clock, 3, self._expired, "too many")

    def _expired(self, awaited: Awaited[str]) -> Exception:
        self.expired.append(awaited.packet_id)
        return Timeout(f"no answer to {awaited.command}({awaited.packet_id}) in {awaited.timeout:g} s")

    def test_an_answer_matches_by_packet_id_reply_and_sender(self) -> None:
        d = self.pending.wait("Id:1", BOB, "Identity", 10)
        self.assertFalse(self.pending.answer("id:2", (BOB,), "Ack", "other id"))
        self.assertFalse(self.pending.answer("id:1", (CAROL,), "Ack", "not the node asked"))
        self.assertFalse(self.pending.answer("id:1", (BOB,), "Data", "not a reply to Identity"))
        self.assertNoResult(d)
        self.assertTrue(self.pending.answer("ID:1", (CAROL, BOB), "Fail", "answer"))
        self.assertEqual(self.successResultOf(d), "answer")
        self.assertEqual((len(self.pending), self.clock.getDelayedCalls()), (0, []))
        self.assertFalse(self.pending.answer("id:1", (BOB,), "Ack", "twice"))

    def test_a_wait_times_out_on_the_clock(self) -> None:
        d = self.pending.wait("id:1", BOB, "Message", 20)
        self.clock.advance(19.9)
        self.assertNoResult(d)
        self.clock.advance(0.1)
        self.assertEqual(str(self.failureResultOf(d, Timeout).value), "no answer to Message(id:1) in 20 s")
        self.assertEqual((self.expired, len(self.pending)), (["id:1"], 0))

    def test_waits_are_bounded_and_once_per_node_when_asked(self) -> None:
        waits = [self.pending.wait(f"id:{number}", BOB, "Message", 5) for number in range(3)]
        self.assertRaises(PendingFull, self.pending.wait, "id:3", BOB, "Message", 5)
        self.clock.advance(5)
        for d in waits:
            self.failureResultOf(d, Timeout)
        self.assertEqual(len(self.pending), 0)
        once: PendingReplies[str] = PendingReplies(self.clock, 10, self._expired, "twice", once_per_node=True)
        once.wait("id:1", BOB, "RelayOut", 5)
        once.wait("id:1", CAROL, "RelayOut", 5)
        self.assertEqual(str(self.assertRaises(PendingFull, once.wait, "ID:1", BOB, "RelayOut", 5)), "twice")

    def test_failing_by_packet_id_and_node_or_by_packet_id_alone(self) -> None:
        to_bob = self.pending.wait("id:1", BOB, "RelayOut", 5)
        to_carol = self.pending.wait("id:1", CAROL, "RelayOut", 5)
        self.assertEqual(self.pending.fail("id:1", ValueError("no route"), asked=CAROL), 1)
        self.failureResultOf(to_carol, ValueError)
        self.assertNoResult(to_bob)
        self.assertEqual(self.pending.fail("ID:1", ValueError("route closed")), 1)
        self.failureResultOf(to_bob, ValueError)
        self.assertEqual((len(self.pending), self.clock.getDelayedCalls(), self.expired), (0, [], []))

    def test_cancelling_a_wait_forgets_it_and_its_timer(self) -> None:
        d = self.pending.wait("id:1", BOB, "Identity", 5)
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        self.assertEqual((len(self.pending), self.clock.getDelayedCalls()), (0, []))
        self.clock.advance(10)
        self.assertEqual(self.expired, [])

    def test_fail_all(self) -> None:
        waits = [self.pending.wait(f"id:{n}", BOB, "Message", 5) for n in range(3)]
        self.pending.fail_all(ValueError("stopped"))
        for d in waits:
            self.failureResultOf(d, ValueError)
        self.assertEqual((len(self.pending), self.clock.getDelayedCalls()), (0, []))
