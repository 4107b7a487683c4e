"""Checks of a node's control fields that need the whole graph: a condition names
only nodes sure to have ended when it is evaluated, a branch lists known nodes,
a loop's body refers to what it may."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from spindle.core.workflow._nodes import ITEM_NAMES, LOOP_NAMES, NodeSpec

if TYPE_CHECKING:
    from spindle.core.workflow._workflow import Workflow

__all__ = ["control_problems"]


def _ancestors(wf: Workflow, nid: str) -> set[str]:
    seen: set[str] = set()
    todo = [d for d in wf.dependencies(nid) if d in wf.nodes]
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(d for d in wf.dependencies(n) if d in wf.nodes and d not in seen)
    return seen


def _ended(wf: Workflow, nid: str) -> set[str]:
    """The nodes sure to have ended when ``nid`` starts: what its dependencies waited for.

    A ``join: any`` node starts after its first dependency completes, so past
    it only what every one of its dependencies waited for is sure.
    """
    memo: dict[str, frozenset[str]] = {}

    def before(n: str) -> frozenset[str]:
        found = memo.get(n)
        if found is not None:
            return found
        memo[n] = frozenset()  # a cycle (reported elsewhere) ends here
        parts = [before(d) | {d} for d in wf.dependencies(n) if d in wf.nodes]
        node = wf.nodes[n]
        if not parts:
            found = frozenset()
        elif node.join == "any":
            found = frozenset.intersection(*parts)
        else:
            found = frozenset.union(*parts)
        memo[n] = found
        return found

    return set(before(nid))


def control_problems(wf: Workflow, nid: str, node: NodeSpec, failed: set[str]) -> list[str]:
    """Graph checks of a node's control fields, one ``problem @ path`` line each."""
    from spindle.core.workflow._conditions import condition_problems

    out: list[str] = []
    where = f"nodes.{nid}"
    upstream: set[str] | None = None
    if node.when is not None and "when" not in failed:
        upstream = _ancestors(wf, nid)
        ended = _ended(wf, nid)
        if callable(node.when):
            out.extend(_predicate_problems(wf, nid, node.when, upstream, ended))
        else:
            check = _ref_check(wf, nid, upstream, ended)
            out.extend(condition_problems(node.when, f"{where}.when", check))
    if node.branch is not None and "branch" not in failed:
        for case, listed in [*node.branch.cases.items(), ("default", node.branch.default)]:
            for n in listed:
                if n not in wf.nodes:
                    out.append(
                        f"branch '{nid}' case '{case}' lists unknown node '{n}' @ {where}.branch"
                    )
                elif n == nid:
                    out.append(f"branch '{nid}' lists itself @ {where}.branch")
    if node.loop is not None and "loop" not in failed:
        out.extend(_loop_problems(wf, nid, node))
    if node.map is not None and "map" not in failed:
        t = node.map.node
        if (t.runtime is None) == (t.effect is None):
            out.append(
                f"map '{nid}': its node needs exactly one of 'runtime' or 'effect' @ "
                f"{where}.map.node"
            )
    return out


def _not_ended(nid: str, head: str, what: str) -> str:
    return (
        f"node '{nid}': {what} node '{head}', which may still be running when '{nid}' "
        f"starts (a join: any node between them starts after its first dependency); "
        f"add after: [{head}] to '{nid}' so it waits for it"
    )


def _ref_check(
    wf: Workflow, nid: str, upstream: set[str], ended: set[str] | None = None
) -> Callable[[str], str | None]:
    def check(ref: str) -> str | None:
        head, _, member = ref.partition(".")
        if head == "inputs":
            if member not in wf.inputs:
                known = ", ".join(wf.inputs) or "(none)"
                return (
                    f"node '{nid}': condition refers to unknown workflow input '{ref}'; "
                    f"declared inputs: {known}"
                )
            return None
        if head not in wf.nodes:
            return f"node '{nid}': condition refers to unknown node '{head}'"
        if head not in upstream:
            return (
                f"node '{nid}': condition refers to node '{head}', which is not upstream of it; "
                f"add it to the node's inputs or after: [{head}]"
            )
        if ended is not None and head not in ended:
            return _not_ended(nid, head, "condition refers to")
        return None

    return check


def _predicate_problems(
    wf: Workflow, nid: str, fn: Callable[..., Any], upstream: set[str], ended: set[str]
) -> list[str]:
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return []
    out = []
    for p in params:
        if p in wf.inputs or p in ITEM_NAMES:
            continue
        if p not in upstream:
            out.append(
                f"node '{nid}': condition parameter '{p}' names neither an upstream node nor a "
                f"workflow input @ nodes.{nid}.when"
            )
        elif p not in ended:
            out.append(f"{_not_ended(nid, p, 'condition parameter names')} @ nodes.{nid}.when")
    return out


def _loop_problems(wf: Workflow, nid: str, node: NodeSpec) -> list[str]:
    from spindle.core.workflow._conditions import condition_problems

    assert node.loop is not None
    out: list[str] = []
    where = f"nodes.{nid}.loop"
    ids = set(node.loop.body_ids())
    upstream = _ancestors(wf, nid)
    outer = _ref_check(wf, nid, upstream, _ended(wf, nid))

    def check(ref: str) -> str | None:
        head = ref.partition(".")[0]
        return None if head in ids or head in LOOP_NAMES else outer(ref)

    for j, b in enumerate(node.loop.body):
        if (b.runtime is None) == (b.effect is None):
            out.append(
                f"loop '{nid}': body node '{b.id}' needs exactly one of 'runtime' or 'effect' "
                f"@ {where}.body.{j}"
            )
        for r in b.references():
            if r.target in ids and r.target == b.id:
                out.append(f"loop '{nid}': body node '{b.id}' refers to itself @ {where}.body.{j}")
        for a in b.after:
            if a not in ids and a not in wf.nodes:
                out.append(
                    f"loop '{nid}': body node '{b.id}' runs after unknown node '{a}' "
                    f"@ {where}.body.{j}.after"
                )
        if isinstance(b.when, dict):
            out.extend(condition_problems(b.when, f"{where}.body.{j}.when", check))
    if node.loop.until is not None:
        out.extend(condition_problems(node.loop.until, f"{where}.until", check))
    return out
