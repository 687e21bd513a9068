"""The bootstrap machine: genesis, seeds, backoff while nobody answers, stop."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial import unittest

from bitdust_node.dht.bootstrap import (
    BootstrapCore,
    BootstrapMachine,
    Seeds,
    parse_known_nodes,
)
from bitdust_node.fsm import Registry, trace


class ParseTests(unittest.TestCase):
    def test_forms(self) -> None:
        self.assertEqual(parse_known_nodes("genesis"), Seeds(True, ()))
        self.assertEqual(parse_known_nodes(" root "), Seeds(True, ()))
        self.assertEqual(
            parse_known_nodes("a.com:14441, 127.0.0.2:1;b\n127.0.0.3:9"),
            Seeds(
                False,
                (("a.com", 14441), ("127.0.0.2", 1), ("b", 14441), ("127.0.0.3", 9)),
            ),
        )
        self.assertEqual(parse_known_nodes(""), Seeds(False, ()))
        for bad in ("a:b", "a:0", "a:70000"):
            self.assertRaises(ValueError, parse_known_nodes, bad)


class FakeJoiner:
    def __init__(self, answers: list[int], saved: list[tuple[str, int]] | None = None) -> None:
        self.answers = answers
        self.calls: list[list[tuple[str, int]]] = []
        self.saved = saved or []

    def join(self, seeds: list[tuple[str, int]]) -> defer.Deferred[int]:
        self.calls.append(seeds)
        return defer.succeed(self.answers.pop(0) if self.answers else 0)

    def saved_addresses(self) -> list[tuple[str, int]]:
        return self.saved


def resolve(host: str) -> defer.Deferred[str]:
    table = {"seed.example": "127.0.0.2"}
    if host in table:
        return defer.succeed(table[host])
    if host[0].isdigit():
        return defer.succeed(host)
    return defer.fail(OSError(f"unknown host {host}"))


class MachineTests(unittest.TestCase):
    def build(self, seeds: Seeds, joiner: FakeJoiner) -> tuple[Any, list[str], Clock]:
        clock = Clock()
        ready: list[str] = []
        core = BootstrapCore(joiner, seeds, clock, resolve, on_ready=lambda: ready.append("ready"))
        machine = BootstrapMachine(core)
        registry = Registry()
        entry = registry.register("dht_bootstrap", "AT_STARTUP")
        trace(machine, entry)
        self.entry = entry
        return machine, ready, clock

    def test_genesis_is_ready_alone(self) -> None:
        joiner = FakeJoiner([])
        machine, ready, _ = self.build(Seeds(True, ()), joiner)
        machine.start()
        self.assertEqual((ready, joiner.calls, self.entry.state), (["ready"], [], "READY"))

    def test_resolves_names_and_joins(self) -> None:
        joiner = FakeJoiner([1])
        machine, ready, _ = self.build(Seeds(False, (("seed.example", 14441), ("nowhere.invalid", 1))), joiner)
        machine.start()
        self.assertEqual(joiner.calls, [[("127.0.0.2", 14441)]])
        self.assertEqual((ready, self.entry.state), (["ready"], "READY"))

    def test_backoff_until_a_seed_answers(self) -> None:
        joiner = FakeJoiner([0, 0, 0, 2])
        machine, ready, clock = self.build(Seeds(False, (("127.0.0.2", 14441),)), joiner)
        machine.start()
        self.assertEqual(self.entry.state, "WAITING")
        clock.advance(2)
        self.assertEqual(len(joiner.calls), 2)
        clock.advance(3.9)
        self.assertEqual(len(joiner.calls), 2)  # second delay is 4 s
        clock.advance(0.1)
        self.assertEqual(len(joiner.calls), 3)
        clock.advance(8)
        self.assertEqual((len(joiner.calls), ready, self.entry.state), (4, ["ready"], "READY"))
        self.assertIn("WAITING", self.entry.past)

    def test_rejoins_when_every_contact_is_lost(self) -> None:
        joiner = FakeJoiner([1, 0, 1])
        machine, ready, clock = self.build(Seeds(False, (("127.0.0.2", 14441),)), joiner)
        machine.start()
        machine.lost()
        self.assertEqual(self.entry.state, "WAITING")
        machine.lost()  # already on it
        clock.advance(2)
        self.assertEqual((len(joiner.calls), self.entry.state), (2, "WAITING"))
        clock.advance(4)
        self.assertEqual((len(joiner.calls), ready, self.entry.state), (3, ["ready", "ready"], "READY"))

    def test_saved_contacts_are_seeds(self) -> None:
        joiner = FakeJoiner([1], saved=[("127.0.0.7", 14441)])
        machine, ready, _ = self.build(Seeds(False, ()), joiner)
        machine.start()
        self.assertEqual((joiner.calls, ready), ([[("127.0.0.7", 14441)]], ["ready"]))

    def test_no_seeds_at_all_says_so_once_and_does_not_retry(self) -> None:
        joiner = FakeJoiner([])
        clock = Clock()
        core = BootstrapCore(joiner, Seeds(False, ()), clock, resolve)
        machine = BootstrapMachine(core)
        entry = Registry().register("dht_bootstrap", "AT_STARTUP")
        trace(machine, entry)
        machine.start()
        self.assertEqual((entry.state, joiner.calls, clock.getDelayedCalls()), ("NO_SEEDS", [], []))
        self.assertIn("services/entangled-dht/known-nodes", core.reason)
        machine.lost()
        clock.advance(600)
        self.assertEqual((entry.state, joiner.calls), ("NO_SEEDS", []))
        machine.stop()
        self.assertEqual(entry.state, "STOPPED")

    def test_waiting_says_why(self) -> None:
        joiner = FakeJoiner([0])
        core = BootstrapCore(joiner, Seeds(False, (("127.0.0.2", 14441),)), Clock(), resolve)
        machine = BootstrapMachine(core)
        machine.start()
        self.assertIn("no DHT seed answered", core.reason)

    def test_stop_cancels_retry(self) -> None:
        joiner = FakeJoiner([])
        machine, _, clock = self.build(Seeds(False, (("127.0.0.2", 14441),)), joiner)
        machine.start()
        machine.stop()
        clock.advance(100)
        self.assertEqual((len(joiner.calls), self.entry.state), (1, "STOPPED"))
        self.assertEqual(clock.getDelayedCalls(), [])
