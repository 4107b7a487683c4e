"""Control flow at attempt time: conditions, branches and maps.

Before a node runs, :func:`gate` decides whether it is live: a branch that
lists it chose another case, or its ``when`` condition is false, and it is
skipped (recorded as skipped, with why). A branch node's own attempt picks
its case (:func:`branch_case`); a map node's first attempt opens the map
(its items start) and its last gathers their results (:func:`map_step`).
Nothing here writes: what it decides comes back as a :class:`Finished`.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from spindle.core.engine._finished import Finished, FinishedKind
from spindle.core.engine._mapping import MapRun
from spindle.core.engine._results import pick
from spindle.core.errors import TaskError
from spindle.core.workflow._conditions import MISSING, condition_refs, describe, evaluate
from spindle.core.workflow._control import case_text

if TYPE_CHECKING:
    from datetime import datetime

    from spindle.core.engine._attempt import Attempts
    from spindle.core.workflow import BranchSpec, NodeSpec

__all__ = ["branch_case", "chosen", "control_attempt", "gate", "map_step"]


def chosen(branch: BranchSpec, case: Any) -> list[str]:
    """The nodes a branch made live, given its recorded case (None: the default)."""
    if case is None:
        return branch.default
    return branch.cases.get(case, branch.default)


async def _value(attempts: Attempts, node: NodeSpec, ref: str) -> Any:
    """What ``ref`` names for ``node``'s condition; MISSING when it has no value."""
    ready = attempts.ready
    head, _, member = ref.partition(".")
    if head == "inputs":
        return attempts.workflow_input(member)
    if ready.is_item(node.id):
        group = ready.item_run(node.id)
        if head in ("item", "index", "iteration", "previous"):
            return group.item_value(node.id, ref)
        head = group.rename(node.id, head)
    if head not in ready.results:
        return MISSING
    value = pick(ready.node(head), await attempts.result_of(head), member or None)
    return MISSING if value is None and member else value


async def holds(attempts: Attempts, node: NodeSpec) -> bool:
    """Whether ``node``'s ``when`` holds (a condition mapping or a Python predicate)."""
    when = node.when
    if callable(when):
        names = inspect.signature(when).parameters
        kwargs = {}
        for name in names:
            value = await _value(attempts, node, name)
            if value is MISSING and name in attempts.wf.inputs:
                value = attempts.workflow_input(name)
            kwargs[name] = None if value is MISSING else value
        verdict = when(**kwargs)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        return bool(verdict)
    values = {ref: await _value(attempts, node, ref) for ref in condition_refs(when)}
    return evaluate(when, values.__getitem__)


async def gate(attempts: Attempts, node: NodeSpec, started: datetime) -> Finished | None:
    """A skip (or a failed condition) for ``node``, or None when it runs."""
    ready = attempts.ready
    for b in ready.listed_by.get(node.id, ()):
        branch = ready.node(b).branch
        if branch is not None and b in ready.results:
            case = ready.results[b]
            if node.id not in chosen(branch, case):
                why = {"skipped_by": "branch", "branch": b, "case": case}
                return Finished(node.id, FinishedKind.SKIP, started, value=why)
    if node.when is None:
        return None
    try:
        live = await holds(attempts, node)
    except Exception as exc:
        error = TaskError(f"node '{node.id}': its condition could not be evaluated: {exc}")
        return Finished(node.id, FinishedKind.ERROR, started, error=error)
    if live:
        return None
    text = describe(node.when) if isinstance(node.when, dict) else "predicate"
    why = {"skipped_by": "when", "condition": text}
    return Finished(node.id, FinishedKind.SKIP, started, value=why)


async def branch_case(attempts: Attempts, node: NodeSpec, started: datetime) -> Finished:
    """A branch node's attempt: the case its ``on`` value selects (None: the default)."""
    assert node.branch is not None
    head, _, member = node.branch.on.partition(".")
    try:
        value = pick(attempts.ready.node(head), await attempts.result_of(head), member or None)
    except Exception as exc:
        return Finished(node.id, FinishedKind.ERROR, started, error=exc)
    text = case_text(value)
    case = text if text in node.branch.cases else None
    return Finished(node.id, FinishedKind.OK, started, value=case)


async def _items(attempts: Attempts, node: NodeSpec) -> list[Any]:
    spec = node.map
    assert spec is not None
    if spec.over is None:
        return list(range(spec.range or 0))
    head, _, member = spec.over.partition(".")
    if head == "inputs":
        value = attempts.workflow_input(member)
    else:
        value = pick(attempts.ready.node(head), await attempts.result_of(head), member or None)
    if isinstance(value, list | tuple):
        return list(value)
    raise TaskError(
        f"map '{node.id}': over '{spec.over}' gave {type(value).__name__} "
        f"{_short(value)}, and a map needs a list (or write over: {{range: N}})",
        node_id=node.id,
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


async def map_step(attempts: Attempts, node: NodeSpec, started: datetime) -> Finished:
    """A map node's attempt: open the map (its items start), or gather its items' results."""
    assert node.map is not None
    ready = attempts.ready
    run = ready.groups.get(node.id)
    if run is None:
        try:
            items = await _items(attempts, node)
        except Exception as exc:
            return Finished(node.id, FinishedKind.ERROR, started, error=exc)
        run = MapRun(node, node.map, items)
        ready.open_group(run)
        if not run.finished:
            return Finished(node.id, FinishedKind.OPENED, started)
    assert isinstance(run, MapRun)
    if run.stopping:
        failed = [c for c in run.ids if c in ready.failed]
        shown = "; ".join(f"{c}: {ready.failed[c].splitlines()[0]}" for c in failed[:3])
        more = f"; and {len(failed) - 3} more" if len(failed) > 3 else ""
        error = TaskError(
            f"map '{node.id}': {len(failed)} of {run.size} items failed, more than "
            f"max_failures {node.map.max_failures}: {shown}{more}",
            node_id=node.id,
        )
        return Finished(node.id, FinishedKind.ERROR, started, error=error)
    results = ready.results
    value = [await attempts.result_of(c) if c in results else None for c in run.ids]
    return Finished(node.id, FinishedKind.OK, started, value=value)


async def control_attempt(attempts: Attempts, node: NodeSpec, started: datetime) -> Finished | None:
    """What a node with control flow does instead of running (None: it runs as a task)."""
    gated = await gate(attempts, node, started)
    if gated is not None:
        return gated
    if node.map is not None:
        return await map_step(attempts, node, started)
    if node.loop is not None:
        from spindle.core.engine._loop_step import loop_step

        return await loop_step(attempts, node, started)
    if node.branch is not None:
        return await branch_case(attempts, node, started)
    return None
