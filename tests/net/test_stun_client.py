"""The STUN client's decisions, driven by a Clock and fakes: who is asked, which answers count, what is learned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.fsm import Registry, trace
from bitdust_node.fsm_diagram import machine_dot
from bitdust_node.net.stun_client import (
    FIRST_RETRY,
    RELEARN_INTERVAL,
    ROUND_SECONDS,
    Address,
    StunCore,
    StunMachine,
    majority,
)
from bitdust_node.net.upnp import UpnpMachine
from bitdust_node.wire import stun

ME = "198.51.100.7"


class FakeServers:
    """DHT nodes naming their STUN ports: each find() waits until the test answers it."""

    def __init__(self) -> None:
        self.pending: list[defer.Deferred[list[Address]]] = []
        self.cancelled = 0

    def find(self) -> defer.Deferred[list[Address]]:
        d: defer.Deferred[list[Address]] = defer.Deferred(lambda _d: setattr(self, "cancelled", self.cancelled + 1))
        self.pending.append(d)
        return d

    def answer(self, servers: list[Address]) -> None:
        self.pending.pop(0).callback(servers)


class FakeSender:
    def __init__(self) -> None:
        self.sent: list[Address] = []

    def send_request(self, address: Address) -> None:
        self.sent.append(address)


def seen(ip: str, port: int = 8882) -> bytes:
    return stun.encode_reply(ip, port)


class StunClientTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.servers = FakeServers()
        self.sender = FakeSender()
        self.learned: list[str] = []
        self.core = StunCore(self.servers, self.sender, self.clock, on_learned=self.learned.append)
        self.machine: Any = StunMachine(self.core)
        self.entry = Registry().register("stun_client", "AT_STARTUP")
        trace(self.machine, self.entry)
        self.machine.start()

    def ask(self, servers: list[Address]) -> None:
        self.assertEqual(self.entry.state, "FINDING")
        self.servers.answer(servers)

    def test_the_ip_a_majority_of_distinct_servers_agrees_on_is_learned(self) -> None:
        self.ask([("203.0.113.1", 8882), ("203.0.113.2", 8882), ("203.0.113.3", 8882)])
        self.assertEqual(self.sender.sent, [("203.0.113.1", 8882), ("203.0.113.2", 8882), ("203.0.113.3", 8882)])
        self.machine.reply(seen(ME), ("203.0.113.1", 8882))
        self.machine.reply(seen("192.0.2.66"), ("203.0.113.2", 8882))
        self.assertEqual(self.learned, [])
        self.machine.reply(seen(ME, 40000), ("203.0.113.3", 8882))
        # every server answered: decided at once, the port each saw does not matter
        self.assertEqual(self.learned, [ME])
        self.assertEqual(self.entry.state, "WAITING")
        self.assertEqual(self.core.ignored["disagreeing"], 1)
        assert self.core.last_round is not None
        self.assertEqual(self.core.last_round.votes["203.0.113.2"], "192.0.2.66")

    def test_a_lone_answer_sets_nothing(self) -> None:
        self.ask([("203.0.113.1", 8882)])
        self.machine.reply(seen("192.0.2.66"), ("203.0.113.1", 8882))
        self.assertEqual(self.learned, [])
        self.assertEqual(self.entry.state, "WAITING")
        self.assertIsNone(self.core.learned)

    def test_a_liar_against_one_honest_server_is_a_tie_and_sets_nothing(self) -> None:
        self.ask([("203.0.113.1", 8882), ("203.0.113.2", 8882)])
        self.machine.reply(seen(ME), ("203.0.113.1", 8882))
        self.machine.reply(seen("192.0.2.66"), ("203.0.113.2", 8882))
        self.assertEqual(self.learned, [])
        self.assertEqual(self.core.ignored["disagreeing"], 2)

    def test_a_liar_with_many_ports_on_one_ip_is_asked_once_and_votes_once(self) -> None:
        liar = "192.0.2.66"
        self.ask([(liar, 8882), (liar, 8883), (liar, 8884), ("203.0.113.1", 8882)])
        self.assertEqual(self.sender.sent, [(liar, 8882), ("203.0.113.1", 8882)])
        self.machine.reply(seen(liar), (liar, 8882))
        self.machine.reply(seen(liar), (liar, 8883))
        self.machine.reply(seen(liar), (liar, 8882))
        self.assertEqual(self.core.ignored["not_asked_address"], 1)
        self.assertEqual(self.core.ignored["repeated"], 1)
        self.clock.advance(ROUND_SECONDS)
        self.assertEqual(self.learned, [])

    def test_bad_answers_are_ignored_and_counted(self) -> None:
        self.machine.reply(seen("192.0.2.66"), ("203.0.113.1", 8882))  # before anyone was asked
        self.ask([("203.0.113.1", 8882), ("203.0.113.2", 8882), ("203.0.113.3", 8882)])
        for junk in (b"1mnot-an-ip:80", b"1m1.2.3.4", b"2s", b"1m" + b"9" * 80, b"1m\xff\xfe:1", b"1m1.2.3.4:0"):
            self.machine.reply(junk, ("203.0.113.1", 8882))
        self.machine.reply(seen("192.0.2.66"), ("203.0.113.9", 8882))  # an address I did not ask
        self.machine.reply(seen("192.0.2.66"), ("203.0.113.2", 9999))  # an asked IP, another port
        self.assertEqual(self.core.ignored["malformed"], 6)
        self.assertEqual(self.core.ignored["not_asked_address"], 2)
        self.assertEqual(self.core.ignored["unasked"], 1)
        # the honest servers still decide
        for server in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
            self.machine.reply(seen(ME), (server, 8882))
        self.assertEqual(self.learned, [ME])
        # a late answer, after the round: unasked
        self.machine.reply(seen(ME), ("203.0.113.1", 8882))
        self.assertEqual(self.core.ignored["unasked"], 2)

    def test_the_round_ends_at_its_deadline_with_the_answers_it_has(self) -> None:
        self.ask([("203.0.113.1", 8882), ("203.0.113.2", 8882), ("203.0.113.3", 8882)])
        self.machine.reply(seen(ME), ("203.0.113.1", 8882))
        self.machine.reply(seen(ME), ("203.0.113.2", 8882))
        self.clock.advance(ROUND_SECONDS - 0.1)
        self.assertEqual(self.learned, [])
        self.clock.advance(0.1)
        self.assertEqual(self.learned, [ME])
        assert self.core.last_round is not None
        self.assertEqual((self.core.last_round.asked, self.core.last_round.answered), (3, 2))

    def test_learned_again_at_the_interval(self) -> None:
        self.ask([("203.0.113.1", 8882), ("203.0.113.2", 8882)])
        for server in ("203.0.113.1", "203.0.113.2"):
            self.machine.reply(seen(ME), (server, 8882))
        self.clock.advance(RELEARN_INTERVAL - 1)
        self.assertEqual(self.entry.state, "WAITING")
        self.clock.advance(1)
        self.ask([("203.0.113.1", 8882), ("203.0.113.2", 8882)])
        for server in ("203.0.113.1", "203.0.113.2"):
            self.machine.reply(seen("198.51.100.99"), (server, 8882))
        self.assertEqual(self.learned, [ME, "198.51.100.99"])

    def test_undecided_rounds_are_retried_sooner_and_sooner_less(self) -> None:
        delays = []
        for _ in range(4):
            self.ask([])
            self.assertEqual(self.entry.state, "WAITING")
            delays.append(self.core.next_delay)
            self.clock.advance(self.core.next_delay)
        self.assertEqual(delays, [FIRST_RETRY, FIRST_RETRY * 2, FIRST_RETRY * 4, FIRST_RETRY * 8])

    def test_a_local_address_change_starts_a_round_at_once(self) -> None:
        self.ask([("203.0.113.1", 8882), ("203.0.113.2", 8882)])
        for server in ("203.0.113.1", "203.0.113.2"):
            self.machine.reply(seen(ME), (server, 8882))
        self.machine.relearn()
        self.assertEqual(self.entry.state, "FINDING")
        self.assertEqual(len(self.servers.pending), 1)
        # the interval's timer was cancelled with the wait
        self.assertEqual(self.clock.getDelayedCalls(), [])
        # asking again while a round runs changes nothing
        self.machine.relearn()
        self.assertEqual(len(self.servers.pending), 1)

    def test_a_failed_search_is_an_undecided_round(self) -> None:
        self.servers.pending.pop(0).errback(RuntimeError("DHT not joined"))
        self.assertEqual(self.entry.state, "WAITING")
        self.assertEqual(self.core.rounds, 1)

    def test_stop_cancels_what_each_state_waits_for(self) -> None:
        self.machine.stop()
        self.assertEqual(self.entry.state, "STOPPED")
        self.assertEqual(self.servers.cancelled, 1)
        self.machine.reply(seen(ME), ("203.0.113.1", 8882))
        self.machine.relearn()
        self.assertEqual(self.entry.state, "STOPPED")

    def test_stop_while_asking_cancels_the_round(self) -> None:
        self.ask([("203.0.113.1", 8882)])
        self.machine.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_majority(self) -> None:
        self.assertIsNone(majority({}))
        self.assertIsNone(majority({"a": ME}))
        self.assertEqual(majority({"a": ME, "b": ME}), ME)
        self.assertIsNone(majority({"a": ME, "b": ME, "c": "x", "d": "x"}))
        self.assertEqual(majority({"a": ME, "b": ME, "c": ME, "d": "x", "e": "y"}), ME)


class DiagramTests(SynchronousTestCase):
    def test_the_drawn_machines_match_the_code(self) -> None:
        net = Path(__file__).resolve().parents[2] / "bitdust_node" / "net"
        for name, machine, source in (("stun_client", StunMachine, "stun_client"),
                                      ("upnp_port_mapper", UpnpMachine, "upnp")):
            made = machine_dot(name, machine, f"bitdust_node/net/{source}.py")
            self.assertEqual((net / f"{source}.dot").read_text(), made, "regenerate with bitdust_node.fsm_diagram")
