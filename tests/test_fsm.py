"""The state machine registry and the service machine's drawn diagram."""

from pathlib import Path

from twisted.trial.unittest import TestCase

from bitdust_node.fsm import HISTORY, Registry
from bitdust_node.fsm_diagram import machine_dot
from bitdust_node.services.machine import ServiceMachine


class RegistryTests(TestCase):
    def test_indexes_grow_and_are_not_reused(self) -> None:
        registry = Registry()
        a = registry.register("a", "OFF")
        b = registry.register("b", "OFF")
        a.unregister()
        c = registry.register("c", "OFF")
        self.assertEqual([e.index for e in registry.entries()], [b.index, c.index])
        self.assertEqual(c.index, 3)
        self.assertIsNone(registry.find("a"))

    def test_history_is_bounded(self) -> None:
        entry = Registry().register("m", "S0")
        for i in range(1, HISTORY + 10):
            entry.set_state(f"S{i}")
        self.assertEqual(len(entry.past), HISTORY)
        self.assertEqual(entry.past[-1], f"S{HISTORY + 8}")
        self.assertEqual(entry.describe()["repr"], f"m(S{HISTORY + 9})")


class DiagramTests(TestCase):
    def test_service_diagram_matches_the_machine(self) -> None:
        drawn = Path(__file__).parent.parent / "bitdust_node" / "services" / "machine.dot"
        made = machine_dot("service", ServiceMachine, "bitdust_node/services/machine.py")
        self.assertEqual(drawn.read_text(), made, "regenerate machine.dot with bitdust_node.fsm_diagram")
        self.assertIn('STARTING -> ON [label="started"]', made)
