"""``spindle show RUN_ID --graph``: a run's graph with node states, as a tree, Mermaid or DOT.

The graph comes from the run's stored definition (its nodes and what each
waits for: ``after``, input references, ``when`` references, a map's
``over``, the branch that lists it) and from the ledger, which holds what the
definition cannot: map items ``NAME[i]``, loop iterations ``NAME#k`` and their
body nodes ``NAME#k/B``, and nodes added at run time (``add_node`` records).
Nothing of the workflow is imported or run to draw it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click
from attrs import define, field

if TYPE_CHECKING:
    from spindle.core.model import StepRecord

__all__ = ["Graph", "GraphNode", "build_graph", "render"]

FORMATS = ("tree", "mermaid", "dot")

_STYLES = {
    "completed": "green",
    "failed": "red",
    "skipped": "bright_black",
    "running": "blue",
    "retrying": "yellow",
    "waiting": "cyan",
    "pending": "white",
}
_FILL = {
    "completed": "#b7e4c7",
    "failed": "#f4a6a6",
    "skipped": "#e0e0e0",
    "running": "#a6c8f4",
    "retrying": "#f9e79f",
    "waiting": "#a6e3e9",
    "pending": "#ffffff",
}
#: How many items of one map (or iterations of one loop) the tree prints in full.
TREE_ITEMS = 10
_ITEM = re.compile(r"^(?P<parent>.+)\[\d+\]$")
_ITERATION = re.compile(r"^(?P<parent>[^/]+)#\d+$")
_BODY = re.compile(r"^(?P<parent>.+#\d+)/[^/]+$")


@define
class GraphNode:
    """One node of a run's graph: what the tree, Mermaid and DOT views draw."""

    id: str
    state: str = "pending"
    why: str | None = None
    attempts: int = 0
    depends_on: list[str] = field(factory=list)
    parent: str | None = None


@define
class Graph:
    """A run's nodes in order, with what each depends on and which node holds it."""

    run_id: str
    nodes: dict[str, GraphNode] = field(factory=dict)

    def edges(self) -> list[tuple[str, str]]:
        """``(from, to)``: a dependency to its dependant, a map/loop to what it holds."""
        out = [(d, n.id) for n in self.nodes.values() for d in n.depends_on if d in self.nodes]
        out += [(n.parent, n.id) for n in self.nodes.values() if n.parent in self.nodes]
        return out

    def document(self) -> dict[str, Any]:
        """The ``--graph --json`` document."""
        return {
            "run_id": self.run_id,
            "nodes": [
                {
                    "id": n.id,
                    "state": n.state,
                    "skipped_by": n.why,
                    "attempts": n.attempts,
                    "depends_on": n.depends_on,
                    "parent": n.parent,
                }
                for n in self.nodes.values()
            ],
            "edges": [list(e) for e in self.edges()],
        }


def _refs(value: Any) -> Iterator[str]:
    """Node ids a stored node mapping's reference text or condition names."""
    if isinstance(value, str):
        head = value.partition(".")[0]
        if head and head != "inputs":
            yield head
    elif isinstance(value, Mapping):
        if set(value) == {"value"}:
            return
        for op, arg in value.items():
            if op in ("all", "any") and isinstance(arg, list):
                for c in arg:
                    yield from _refs(c)
            elif op in ("exists", "truthy", "not"):
                yield from _refs(arg)
            elif isinstance(arg, list) and arg:
                yield from _refs(arg[0])


def _depends(node: Mapping[str, Any], known: Mapping[str, Any]) -> list[str]:
    deps: list[str] = [a for a in node.get("after") or () if isinstance(a, str)]
    for ref in (node.get("inputs") or {}).values():
        deps.extend(_refs(ref))
    if node.get("when") is not None:
        deps.extend(_refs(node["when"]))
    spec = node.get("map")
    if isinstance(spec, Mapping) and isinstance(spec.get("over"), str):
        deps.extend(_refs(spec["over"]))
    spec = node.get("branch")
    if isinstance(spec, Mapping) and isinstance(spec.get("on"), str):
        deps.extend(_refs(spec["on"]))
    return [d for d in dict.fromkeys(deps) if d in known]


def _parent(node_id: str) -> str | None:
    for pattern in (_BODY, _ITEM, _ITERATION):
        found = pattern.match(node_id)
        if found:
            return found.group("parent")
    return None


def build_graph(
    run_id: str, definition: Mapping[str, Any] | None, records: Sequence[StepRecord]
) -> Graph:
    """The graph of run ``run_id`` from its stored ``definition`` and its ledger."""
    graph = Graph(run_id)
    declared: Mapping[str, Any] = (definition or {}).get("nodes") or {}
    for nid, node in declared.items():
        graph.nodes[nid] = GraphNode(nid, depends_on=_depends(node, declared))
    for nid, node in declared.items():
        spec = node.get("branch")
        if isinstance(spec, Mapping):
            listed = [*(spec.get("default") or [])]
            for ids in (spec.get("cases") or {}).values():
                listed.extend([ids] if isinstance(ids, str) else ids)
            for target in dict.fromkeys(listed):
                if target in graph.nodes and nid not in graph.nodes[target].depends_on:
                    graph.nodes[target].depends_on.append(nid)
    for rec in records:
        kind = rec.kind.value
        if kind == "call" and rec.name == "add_node" and isinstance(rec.result, Mapping):
            added = str(rec.result.get("id"))
            deps = [rec.node_id, *_depends(rec.result, {**graph.nodes, added: None})]
            graph.nodes.setdefault(
                added, GraphNode(added, depends_on=[d for d in dict.fromkeys(deps) if d != added])
            )
            continue
        if not rec.node_id or kind not in ("node", "retry", "wait"):
            continue
        node = graph.nodes.get(rec.node_id)
        if node is None:
            node = graph.nodes[rec.node_id] = GraphNode(rec.node_id, parent=_parent(rec.node_id))
        node.state = {"retry": "retrying", "wait": "waiting"}.get(kind, rec.status.value)
        node.attempts = max(node.attempts, rec.attempt)
        if node.state == "skipped":
            result = rec.result if isinstance(rec.result, Mapping) else {}
            node.why = str(result.get("skipped_by") or "failed")
    return graph


# --- the views ----------------------------------------------------------------------------


def _label(node: GraphNode) -> str:
    state = f"{node.state} ({node.why})" if node.why else node.state
    tries = f", {node.attempts} attempts" if node.attempts > 1 else ""
    return f"{node.id}  {state}{tries}"


def _natural(node_id: str) -> list[Any]:
    """Sort key: ``m[2]`` before ``m[10]``, ``L#2/b`` before ``L#10``."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", node_id)]


def _tree(graph: Graph) -> list[str]:
    """Roots first, each node under its first dependency (a node with more is named
    again under the others with ``↑``), a map's items and a loop's iterations under it."""
    under: dict[str | None, list[str]] = {}
    for n in graph.nodes.values():
        first = n.parent or next((d for d in n.depends_on if d in graph.nodes), None)
        under.setdefault(first, []).append(n.id)
    also: dict[str, list[str]] = {}
    for n in graph.nodes.values():
        if n.parent is None:
            for d in n.depends_on[1:]:
                if d in graph.nodes:
                    also.setdefault(d, []).append(n.id)
    lines: list[str] = []

    def walk(nid: str, prefix: str, last: bool, depth: int) -> None:
        node = graph.nodes[nid]
        branch = "" if depth == 0 else ("└─ " if last else "├─ ")
        text = click.style(_label(node), fg=_STYLES.get(node.state))
        lines.append(f"{prefix}{branch}{text}")
        inner = prefix + ("" if depth == 0 else ("   " if last else "│  "))
        kids = under.get(nid, [])
        items = sorted((k for k in kids if graph.nodes[k].parent == nid), key=_natural)
        shown = items[:TREE_ITEMS] + [k for k in kids if graph.nodes[k].parent != nid]
        hidden = items[TREE_ITEMS:]
        refs = also.get(nid, [])
        total = len(shown) + len(refs) + (1 if hidden else 0)
        for i, kid in enumerate(shown[:TREE_ITEMS]):
            walk(kid, inner, i == total - 1, depth + 1)
        if hidden:
            counts: dict[str, int] = {}
            for k in hidden:
                counts[graph.nodes[k].state] = counts.get(graph.nodes[k].state, 0) + 1
            summary = ", ".join(f"{v:,} {k}" for k, v in counts.items())
            end = total == TREE_ITEMS + 1
            lines.append(f"{inner}{'└─ ' if end else '├─ '}… {len(hidden):,} more: {summary}")
        for i, kid in enumerate(shown[TREE_ITEMS:], start=TREE_ITEMS + (1 if hidden else 0)):
            walk(kid, inner, i == total - 1, depth + 1)
        for j, ref in enumerate(refs):
            end = total - len(refs) + j == total - 1
            lines.append(f"{inner}{'└─ ' if end else '├─ '}↑ {ref} (shown above)")

    roots = under.get(None, [])
    for root in roots:
        walk(root, "", True, 0)
    return lines


def _mermaid_text(text: str) -> str:
    return "".join(f"#{ord(c)};" if c in '"#<>&[]{}|`\\;' or ord(c) < 32 else c for c in text)


def _mermaid(graph: Graph) -> list[str]:
    ids = {nid: f"n{i}" for i, nid in enumerate(graph.nodes)}
    lines = ["flowchart TD"]
    lines += [f"  classDef {s} fill:{c},stroke:#555" for s, c in _FILL.items()]
    for nid, node in graph.nodes.items():
        lines.append(f'  {ids[nid]}["{_mermaid_text(_label(node))}"]:::{node.state}')
    lines += [f"  {ids[a]} --> {ids[b]}" for a, b in graph.edges()]
    return lines


def _dot_text(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a DOT string: quotes, backslashes escaped


def _dot(graph: Graph) -> list[str]:
    ids = {nid: f"n{i}" for i, nid in enumerate(graph.nodes)}
    lines = [f"digraph {_dot_text('run ' + graph.run_id)} {{", "  node [shape=box, style=filled];"]
    for nid, node in graph.nodes.items():
        fill = _FILL.get(node.state, "#ffffff")
        lines.append(f'  {ids[nid]} [label={_dot_text(_label(node))}, fillcolor="{fill}"];')
    lines += [f"  {ids[a]} -> {ids[b]};" for a, b in graph.edges()]
    lines.append("}")
    return lines


def render(graph: Graph, fmt: str) -> list[str]:
    """The lines of ``graph`` drawn as ``fmt``: ``tree``, ``mermaid`` or ``dot``."""
    if fmt == "mermaid":
        return _mermaid(graph)
    if fmt == "dot":
        return _dot(graph)
    return _tree(graph)
