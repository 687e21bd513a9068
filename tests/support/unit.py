"""The systemd unit the Debian package installs, read as systemd reads it: tests and benchmarks run nodes as it does."""

from __future__ import annotations

import shlex
from pathlib import Path

UNIT = Path(__file__).resolve().parents[2] / "debian" / "bitdust.service"


def unit_fields(text: str) -> dict[str, list[str]]:
    """The [Service] section's assignments, every value of a repeated key kept."""
    fields: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            fields.setdefault(key, []).append(value)
    return fields


def unit_environment(fields: dict[str, list[str]] | None = None) -> dict[str, str]:
    """What the unit's Environment= lines put in the node's environment (this tree's unit by default)."""
    if fields is None:
        fields = unit_fields(UNIT.read_text())
    env: dict[str, str] = {}
    for assignment in fields.get("Environment", []):
        for pair in shlex.split(assignment):
            key, value = pair.split("=", 1)
            env[key] = value
    return env
