"""The benchmarks that need no sockets still run against the node's code as it is now (a changed interface
broke durability_sim.py once without any test noticing): a short simulated run, checked for sense."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from unittest import mock

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


class CatalogScaleTests(TestCase):
    def test_a_small_catalog_is_built_saved_and_measured(self) -> None:
        folder = Path(self.mktemp())
        folder.mkdir()
        scale = load("catalog_scale")
        got = scale.measure(files=20, blocks_a_file=2, suppliers=4, copy_to=folder)
        self.assertEqual((got["files"], got["pages"], got["first_stored"], got["next_stored"]), (20, 0, 4, 4))
        # my copy, read back as a node starting reads it: the 20 files and the one the second save added; then the
        # first save after that start, stored on every supplier
        read = scale.load(folder, 4)
        self.assertEqual((read["files"], read["restart_stored"]), (21, 4))
        self.assertGreater(got["text_mib"], 0)
        # a small catalog: every supplier gets it whole, sealed (base64: a third larger) in one packet, each save
        self.assertGreater(got["first_sent_mib"], 4 * got["text_mib"])
        self.assertGreater(got["next_sent_mib"], 4 * got["text_mib"])
        self.assertTrue(got["fits"])

    def test_a_large_catalog_sends_the_page_a_file_changed(self) -> None:
        from bitdust_node.storage import catalog_pages

        with mock.patch.object(catalog_pages, "PAGED_FROM", 100_000), mock.patch.object(catalog_pages, "PAGE_TEXT",
                                                                                        20_000):
            got = load("catalog_scale").measure(files=400, blocks_a_file=2, suppliers=4)
        self.assertGreater(got["pages"], 8)
        self.assertGreater(got["first_sent_mib"], 4 * got["text_mib"])
        # the next save: one page and the root to each supplier
        self.assertLess(got["next_sent_mib"], got["first_sent_mib"] / 4)
        self.assertEqual(got["next_stored"], 4)
