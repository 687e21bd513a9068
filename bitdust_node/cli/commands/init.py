"""`bitdust init --profile NAME|FILE`: write a set of settings into the home in one step."""

from __future__ import annotations

import argparse
import json
from importlib import resources
from pathlib import Path
from typing import Any

from bitdust_node.cli.context import CliContext, CliError
from bitdust_node.home import SETTINGS_FILE


def load_profile(name: str) -> dict[str, Any]:
    """A profile shipped with the package (`local-network`) or a JSON file of key: value."""
    path = Path(name)
    try:
        if path.exists():
            text = path.read_text(encoding="utf-8")
        else:
            text = resources.files("bitdust_node.profiles").joinpath(f"{name}.json").read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        raise CliError(f"no profile {name!r}: give a JSON file or one of: {', '.join(profile_names())}", 2) from None
    try:
        profile = json.loads(text)
    except ValueError as err:
        raise CliError(f"profile {name!r} is not valid JSON: {err}", 2) from None
    if not isinstance(profile, dict):
        raise CliError(f"profile {name!r} must be a JSON object of setting: value", 2)
    return profile


def profile_names() -> list[str]:
    folder = resources.files("bitdust_node.profiles")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def cmd_init(args: argparse.Namespace, ctx: CliContext) -> int:
    if args.if_new and (ctx.home / SETTINGS_FILE).exists():
        print(f"{ctx.home} already has settings; left as they are")
        return 0
    if ctx.is_running():
        raise CliError("stop the node first: a profile rewrites many settings at once")
    profile = load_profile(args.profile)
    settings = ctx.settings()
    # validate every value before writing any, so a bad profile changes nothing
    for key, value in profile.items():
        settings.definition(key).parse(value)
    for key, value in profile.items():
        settings.set(key, value)
    print(f"applied profile {args.profile} ({len(profile)} settings) to {ctx.home}")
    return 0


def register(subparsers: Any) -> None:
    init = subparsers.add_parser("init", help="apply a settings profile to the home (node stopped)")
    init.add_argument("--profile", required=True, help="local-network, or a JSON file of setting: value")
    init.add_argument("--if-new", action="store_true", help="do nothing if the home already has settings")
    init.set_defaults(func=cmd_init)
