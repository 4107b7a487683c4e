"""Sub-workflow runs nested in ``spindle show``: each under the node that started it.

A child run records the wait key of the node that started it
(``parent_wait_key``: the node id, or ``NODE:...`` for a mid-function ask), so
its rows can be printed under that node's row, and its own children under
its rows, down to :data:`MAX_DEPTH` levels. A node that started many children
(a map over a sub-workflow) shows the first :data:`PER_NODE` of them in full
and counts the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click
from attrs import define, field

from spindle._cli._render import node_rows

if TYPE_CHECKING:
    from spindle.core.engine import Engine
    from spindle.core.model import RunState

__all__ = ["MAX_DEPTH", "PER_NODE", "Nested", "nested_children", "nested_document", "print_nested"]

#: How many levels of sub-workflow runs ``show`` prints.
MAX_DEPTH = 5
#: How many children of one node ``show`` prints in full.
PER_NODE = 20


@define
class Nested:
    """A child run with its node rows and its own children, by the node that started them."""

    state: RunState
    nodes: dict[str, dict[str, Any]]
    children: dict[str, list[Nested]] = field(factory=dict)
    more: dict[str, int] = field(factory=dict)
    deeper: int = 0


def starter(child: RunState, nodes: Iterable[str]) -> str | None:
    """The parent's node that started ``child`` (None when none of ``nodes`` matches)."""
    key = child.parent_wait_key or ""
    known = set(nodes)
    if key in known:
        return key
    head = key.partition(":")[0]
    return head if head in known else None


async def _rows(engine: Engine, state: RunState) -> dict[str, dict[str, Any]]:
    order: list[str] = []
    if state.definition_id:
        definition = await engine.store.get_definition(state.definition_id)
        order = list(definition.get("nodes", {}))
    return node_rows(order, await engine.ledger(state.run_id))


async def nested_children(
    engine: Engine,
    children: Sequence[RunState],
    nodes: Mapping[str, Any],
    depth: int = 1,
) -> tuple[dict[str, list[Nested]], dict[str, int]]:
    """``children`` grouped by the node of ``nodes`` that started each, with their rows
    and children (to :data:`MAX_DEPTH` levels), and how many were left out per node."""
    grouped: dict[str, list[Nested]] = {}
    more: dict[str, int] = {}
    for child in children:
        node = starter(child, nodes)
        if node is None:
            continue
        shown = grouped.setdefault(node, [])
        if len(shown) >= PER_NODE:
            more[node] = more.get(node, 0) + 1
            continue
        rows = await _rows(engine, child)
        item = Nested(child, rows)
        grand = await engine.store.list_runs(parent_run_id=child.run_id)
        if grand and depth < MAX_DEPTH:
            item.children, item.more = await nested_children(engine, grand, rows, depth + 1)
        else:
            item.deeper = len(grand)
        shown.append(item)
    return grouped, more


def print_nested(
    indent: str, node: str, grouped: Mapping[str, list[Nested]], more: Mapping[str, int]
) -> None:
    """Print the children ``node`` started, indented under its row."""
    for item in grouped.get(node, []):
        s = item.state
        click.echo(f"{indent}└─ sub-run {s.run_id}  {s.workflow}  {s.status.value}")
        inner = indent + "   "
        width = max((len(n) for n in item.nodes), default=0)
        for nid, info in item.nodes.items():
            took = f"  {info['seconds']:.2f}s" if info["seconds"] is not None else ""
            click.echo(f"{inner}{nid.ljust(width)}  {info['status']}{took}")
            print_nested(inner + "  ", nid, item.children, item.more)
        if item.deeper:
            click.echo(f"{inner}… {item.deeper} sub-run(s) deeper than {MAX_DEPTH} levels")
    if more.get(node):
        click.echo(f"{indent}└─ … and {more[node]} more sub-runs (spindle runs lists them)")


def nested_document(
    grouped: Mapping[str, list[Nested]], more: Mapping[str, int]
) -> list[dict[str, Any]]:
    """``show --json``'s ``children_detail``: what :func:`print_nested` prints, as data.

    One entry per child shown: its ``run_id``, ``workflow``, ``status``, the
    ``node`` that started it, its ``nodes`` (id to status) and its own
    ``children_detail``; ``more_children`` counts the children left out (past
    :data:`PER_NODE` of one node, or deeper than :data:`MAX_DEPTH`).
    """
    out: list[dict[str, Any]] = []
    for node, items in grouped.items():
        for item in items:
            s = item.state
            out.append(
                {
                    "run_id": s.run_id,
                    "workflow": s.workflow,
                    "status": s.status.value,
                    "node": node,
                    "nodes": {nid: info["status"] for nid, info in item.nodes.items()},
                    "children_detail": nested_document(item.children, item.more),
                    "more_children": sum(item.more.values()) + item.deeper,
                }
            )
    return out
