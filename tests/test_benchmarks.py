"""The benchmarks that need no sockets still run against the node's code as it is now (a changed interface
broke durability_sim.py once without any test noticing): a short simulated run, checked for sense."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from twisted.trial.unittest import TestCase

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class DurabilitySimTests(TestCase):
    def test_sixty_simulated_days_with_and_without_checks(self) -> None:
        sim = load("durability_sim")
        checked = sim.run(seed=3, days=60, customers=3, files=2, checking=True, max_blocks=1)
        unchecked = sim.run(seed=3, days=60, customers=3, files=2, checking=False, max_blocks=1)
        self.assertEqual(checked["files"], 6)
        self.assertGreater(checked["stored"], 0)
        self.assertGreater(checked["checks"], 0)
        self.assertEqual(unchecked["checks"], 0)
        self.assertLessEqual(checked["lost"], unchecked["lost"])
