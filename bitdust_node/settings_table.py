"""The README's table of every setting, made from the definitions (`python -m bitdust_node.settings_table`
rewrites it in place; a test checks that the README's copy is current)."""

from __future__ import annotations

import sys
from pathlib import Path

from bitdust_node.settings import DEFINITIONS, Setting

BEGIN = "<!-- settings table: made by `python -m bitdust_node.settings_table` -->"
END = "<!-- end of settings table -->"


def _kind(setting: Setting) -> str:
    if setting.choices:
        return "one of " + ", ".join(str(c) for c in setting.choices)
    if setting.min is not None and setting.max is not None:
        return f"{setting.type} ({setting.min} to {setting.max})"
    return setting.type


def table() -> str:
    rows = ["| key | default | type | meaning |", "|---|---|---|---|"]
    for setting in DEFINITIONS:
        default = "" if setting.default == "" else str(setting.default).lower() if isinstance(
            setting.default, bool) else str(setting.default)
        note = setting.label
        if setting.key.endswith("/enabled") and setting.key.startswith("services/"):
            note = "run service_" + setting.key.split("/")[1].replace("-", "_")
        note += "" if setting.live else " (applied at the next start)"
        rows.append(f"| `{setting.key}` | `{default}` | {_kind(setting)} | {note} |")
    return "\n".join(rows)


def with_table(readme: str) -> str:
    """The README text with the table between its markers replaced by the current one."""
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    return readme[:start] + "\n" + table() + "\n" + readme[end:]


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "README.md"
    path.write_text(with_table(path.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__":
    main()
