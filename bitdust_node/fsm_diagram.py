"""Graphviz text of an Automat TypeMachine, made from its transitions so a diagram never drifts."""

from __future__ import annotations

from typing import Any


def machine_dot(name: str, machine: Any, source: str) -> str:
    """`digraph` text of every transition of `machine` (a built TypeMachine), one edge per input."""
    automaton = machine.__automat_automaton__
    edges: dict[tuple[str, str], list[str]] = {}
    for old, symbol, new, _outputs in automaton.allTransitions():
        edges.setdefault((old.name, new.name), []).append(symbol)
    lines = [
        f"// {name} ({source}); made by bitdust_node.fsm_diagram, render with: dot -Tsvg",
        f"digraph {name} {{",
        "    rankdir=LR;",
        "    node [shape=box, style=rounded];",
        f"    {_node(automaton.initialState.name)} [style=\"rounded,bold\"];",
    ]
    for (old, new), symbols in sorted(edges.items()):
        lines.append(f'    {_node(old)} -> {_node(new)} [label="{", ".join(sorted(symbols))}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _node(name: str) -> str:
    # official state names such as `ID_SERVERS?` are no DOT identifiers: quoted
    return name if name.isidentifier() else f'"{name}"'
