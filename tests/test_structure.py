"""The shape of the house, read from the code: no import circle between files, and rooms never reach up.

Every `import` of every module counts, those under `if TYPE_CHECKING:` and inside functions too.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

PACKAGE = Path(__file__).resolve().parents[1] / "bitdust_node"
ROOMS = ("dht", "identity", "transport", "proxy", "storage", "messages")
# what a room must never import: the glue above it
ABOVE_ROOMS = ("bitdust_node.services", "bitdust_node.api", "bitdust_node.gui", "bitdust_node.cli", "bitdust_node.node")
# pure formats and crypto: nothing of the node but each other
PURE = ("wire", "crypto")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The modules of the package that `path` imports (a `from pkg import mod` counts as mod)."""
    return imports_in(path.read_text(), module_name(path), path.name == "__init__.py", modules)


def imports_in(source: str, this: str, is_package: bool, modules: set[str]) -> set[str]:
    found: set[str] = set()
    package = this if is_package else this.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = parts[: len(parts) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name in modules and name != this}


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    # an empty package __init__ only marks a folder: importing `pkg.mod` is not an edge to `pkg`
    empty = {name for name, p in paths.items() if p.name == "__init__.py" and not p.read_text().strip()}
    return {name: imports_of(path, modules) - empty for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = "open"
        stack.append(name)
        for dep in sorted(graph[name]):
            if state.get(dep) == "open":
                return [*stack[stack.index(dep) :], dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        stack.pop()
        state[name] = "done"
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name)):
            return cycle
    return None


def room_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else ""


class StructureTests(SynchronousTestCase):
    def test_no_import_cycle_between_files(self) -> None:
        cycle = find_cycle(import_graph())
        self.assertIsNone(cycle, f"import cycle: {' -> '.join(cycle or [])}")

    def test_the_cycle_finder_finds_cycles(self) -> None:
        self.assertEqual(find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}), ["a", "b", "c", "a"])
        self.assertIsNone(find_cycle({"a": {"b"}, "b": set()}))

    def test_rooms_never_import_the_glue_above_them(self) -> None:
        wrong = [
            f"{module} imports {dep}"
            for module, deps in import_graph().items()
            if room_of(module) in ROOMS
            for dep in deps
            if dep.startswith(ABOVE_ROOMS)
        ]
        self.assertEqual(wrong, [])

    def test_the_rest_api_never_imports_the_web_interface_above_it(self) -> None:
        # the interface calls the endpoints' logic; the node hands it to the API, which knows only WebFront
        wrong = [
            f"{module} imports {dep}"
            for module, deps in import_graph().items()
            if room_of(module) in ("api", "services") or module == "bitdust_node.api"
            for dep in deps
            if dep.startswith("bitdust_node.gui")
        ]
        self.assertEqual(wrong, [])

    def test_wire_and_crypto_import_nothing_of_the_node(self) -> None:
        wrong = [
            f"{module} imports {dep}"
            for module, deps in import_graph().items()
            if room_of(module) in PURE
            for dep in deps
            if room_of(dep) not in PURE and dep != "bitdust_node.errors"
        ]
        self.assertEqual(wrong, [])

    def test_only_the_node_and_its_makers_know_the_node(self) -> None:
        # the check, as a person would run it
        found = subprocess.run(
            ["grep", "-rnE", r"node: Any|from bitdust_node.node import|node\.graph\.", str(PACKAGE)],
            capture_output=True, text=True, check=False,
        ).stdout.splitlines()
        allowed = re.compile(r"/bitdust_node/(node|tap|services/graph)\.py:")
        self.assertEqual([line for line in found if not allowed.search(line)], [])

    def test_the_walker_sees_type_checking_and_local_imports(self) -> None:
        source = (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bitdust_node.node import Node\n"
            "def f():\n    from . import upkeep\n"
        )
        modules = {"bitdust_node.node", "bitdust_node.dht.upkeep"}
        self.assertEqual(imports_in(source, "bitdust_node.dht.status", False, modules), modules)
