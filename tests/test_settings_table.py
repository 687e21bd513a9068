"""The README's table of settings is the one the definitions make (regenerate with
`python -m bitdust_node.settings_table`)."""

from __future__ import annotations

from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.settings import DEFINITIONS
from bitdust_node.settings_table import table, with_table

README = Path(__file__).resolve().parents[1] / "README.md"


class SettingsTableTests(SynchronousTestCase):
    def test_the_readme_table_is_current(self) -> None:
        text = README.read_text(encoding="utf-8")
        self.assertEqual(with_table(text), text, "run: python -m bitdust_node.settings_table")

    def test_every_setting_has_its_row(self) -> None:
        made = table()
        for setting in DEFINITIONS:
            self.assertIn(f"| `{setting.key}` |", made)
