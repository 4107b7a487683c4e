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
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click
from attrs import define, field

if TYPE_CHECKING:
    from spindle.core.model import StepRecord
    from spindle.core.workflow import NodeSpec

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


def _ids(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value or () if isinstance(v, str)] if isinstance(value, list) else []


def _skeleton(nid: str, raw: Mapping[str, Any]) -> NodeSpec:
    """The parts of stored node ``raw`` that decide what it waits for, as a :class:`NodeSpec`
    (no runtime or executor: nothing is imported), so the workflow layer's own
    :meth:`Workflow.dependencies` computes its edges exactly as the engine does."""
    from spindle.core.workflow import BranchSpec, LoopSpec, MapSpec, NodeSpec

    inputs = raw.get("inputs")
    spec = NodeSpec(
        nid,
        inputs=dict(inputs) if isinstance(inputs, Mapping) else {},
        after=_ids(raw.get("after")),
    )
    branch = raw.get("branch")
    if isinstance(branch, Mapping) and isinstance(branch.get("on"), str):
        cases = branch.get("cases")
        spec.branch = BranchSpec(
            branch["on"],
            {str(k): _ids(v) for k, v in cases.items()} if isinstance(cases, Mapping) else {},
            _ids(branch.get("default")),
        )
    mapped = raw.get("map")
    if isinstance(mapped, Mapping):
        over, template = mapped.get("over"), mapped.get("node")
        spec.map = MapSpec(
            _skeleton(f"{nid}[]", template if isinstance(template, Mapping) else {}),
            over=over if isinstance(over, str) else None,
        )
    loop = raw.get("loop")
    if isinstance(loop, Mapping) and isinstance(loop.get("body"), list):
        body = [b for b in loop["body"] if isinstance(b, Mapping)]
        spec.loop = LoopSpec([_skeleton(str(b.get("id")), b) for b in body])
    return spec


def _parent(node_id: str) -> str | None:
    for pattern in (_BODY, _ITEM, _ITERATION):
        found = pattern.match(node_id)
        if found:
            return found.group("parent")
    return None


def _place(graph: Graph, node_id: str) -> GraphNode:
    """The graph's node ``node_id``, added (after the map/loop/iteration holding it,
    which is added too when the ledger has no record of it yet) if new."""
    node = graph.nodes.get(node_id)
    if node is None:
        parent = _parent(node_id)
        if parent is not None:
            _place(graph, parent)
        node = graph.nodes[node_id] = GraphNode(node_id, parent=parent)
    return node


def build_graph(
    run_id: str,
    definition: Mapping[str, Any] | None,
    records: Sequence[StepRecord],
    *,
    active: bool = False,
) -> Graph:
    """The graph of run ``run_id`` from its stored ``definition`` and its ledger.

    ``active`` (the run has not ended): a map, loop or iteration with no record
    of its own but with recorded items is ``running`` rather than ``pending``.
    """
    from spindle.core.workflow import Workflow

    graph = Graph(run_id)
    declared: Mapping[str, Any] = (definition or {}).get("nodes") or {}
    wf = Workflow(str((definition or {}).get("name") or "run"))
    for nid, raw in declared.items():
        if isinstance(raw, Mapping):
            wf.add(_skeleton(nid, raw))
            graph.nodes[nid] = GraphNode(nid)
    adders: dict[str, str] = {}
    recorded: set[str] = set()
    for rec in records:
        kind = rec.kind.value
        if kind == "call" and rec.name == "add_node" and isinstance(rec.result, Mapping):
            added = str(rec.result.get("id"))
            if added not in wf.nodes and rec.node_id:
                wf.add(_skeleton(added, rec.result))
                adders[added] = rec.node_id
                graph.nodes.setdefault(added, GraphNode(added))
            continue
        if not rec.node_id or kind not in ("node", "retry", "wait"):
            continue
        node = _place(graph, rec.node_id)
        recorded.add(node.id)
        node.state = {"retry": "retrying", "wait": "waiting"}.get(kind, rec.status.value)
        node.attempts = max(node.attempts, rec.attempt)
        node.why = None
        if node.state == "skipped":
            result = rec.result if isinstance(rec.result, Mapping) else {}
            node.why = str(result.get("skipped_by") or "failed")
    for nid in wf.nodes:
        deps = [adders[nid]] if nid in adders else []
        deps += [d for d in wf.dependencies(nid) if d in graph.nodes and d != nid]
        graph.nodes[nid].depends_on = list(dict.fromkeys(deps))
    if active:
        for nid in recorded:
            holder = graph.nodes[nid].parent
            while holder in graph.nodes and holder not in recorded:
                graph.nodes[holder].state = "running"
                holder = graph.nodes[holder].parent
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
    """Roots first, each node under a dependency and a map's items or a loop's
    iterations under it. A node with several dependencies is drawn in full the
    first time the walk meets it and named again (``↑ NODE (shown above)``) under
    the others, so the tree has one line per node and per extra edge."""
    kids: dict[str, list[str]] = {nid: [] for nid in graph.nodes}
    for n in graph.nodes.values():
        if n.parent in kids:
            kids[n.parent].append(n.id)
    for n in graph.nodes.values():
        if n.parent is None:
            for d in n.depends_on:
                kids[d].append(n.id)
    roots = [n.id for n in graph.nodes.values() if n.parent is None and not n.depends_on]
    lines: list[str] = []
    drawn: set[str] = set()
    # (text, node) pairs: a node to draw (text None) or a line to print as it is; a stack,
    # not recursion, so a chain of 10,000 nodes draws like any other graph.
    todo: list[tuple[str, str, str | None]] = []
    for root in reversed(roots):
        todo.append(("", root, None))
    leftovers = iter(list(graph.nodes))
    while True:
        if not todo:
            rest = next((n for n in leftovers if n not in drawn), None)
            if rest is None:
                break
            todo.append(("", rest, None))
        lead, nid, text = todo.pop()
        if text is not None:
            lines.append(lead + text)
            continue
        node = graph.nodes[nid]
        top = lead == ""
        if nid in drawn:
            lines.append(f"{lead}↑ {nid} (shown above)")
            continue
        drawn.add(nid)
        lines.append(lead + click.style(_label(node), fg=_STYLES.get(node.state)))
        inner = lead[:-3] + ("   " if lead.endswith("└─ ") else "│  ") if not top else ""
        held = sorted((k for k in kids[nid] if graph.nodes[k].parent == nid), key=_natural)
        entries: list[tuple[str, str | None]] = [(k, None) for k in held[:TREE_ITEMS]]
        if len(held) > TREE_ITEMS:
            counts: dict[str, int] = {}
            for k in held[TREE_ITEMS:]:
                counts[graph.nodes[k].state] = counts.get(graph.nodes[k].state, 0) + 1
            summary = ", ".join(f"{v:,} {k}" for k, v in counts.items())
            entries.append(("", f"… {len(held) - TREE_ITEMS:,} more: {summary}"))
            drawn.update(held[TREE_ITEMS:])  # counted, not drawn again at the top level
        entries += [(k, None) for k in kids[nid] if graph.nodes[k].parent != nid]
        for i in range(len(entries) - 1, -1, -1):
            kid, line = entries[i]
            todo.append((inner + ("└─ " if i == len(entries) - 1 else "├─ "), kid, line))
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
