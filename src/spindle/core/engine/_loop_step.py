"""A loop node's attempt: open an iteration, record one that ended, or end the loop.

See :mod:`spindle.core.engine._looping` for how iterations are named and fed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from spindle.core.engine._finished import Finished, FinishedKind
from spindle.core.engine._looping import LoopRun, iteration_id
from spindle.core.engine._results import pick
from spindle.core.errors import TaskError
from spindle.core.workflow._conditions import MISSING, condition_refs, evaluate

if TYPE_CHECKING:
    from datetime import datetime

    from spindle.core.engine._attempt import Attempts
    from spindle.core.workflow import NodeSpec

__all__ = ["loop_step"]


async def _recorded(attempts: Attempts, node_id: str) -> tuple[int, Any, bool]:
    """The first iteration not recorded, the body results before it, whether it is done."""
    ready = attempts.ready
    k, previous, done = 0, None, False
    while iteration_id(node_id, k) in ready.results:
        rec = await attempts.result_of(iteration_id(node_id, k))
        previous = rec.get("results") if isinstance(rec, dict) else None
        done = bool(rec.get("done")) if isinstance(rec, dict) else True
        k += 1
        if done:
            break
    return k, previous, done


async def _gather(attempts: Attempts, run: LoopRun) -> dict[str, Any]:
    ready = attempts.ready
    out: dict[str, Any] = {}
    for bid, cid in run.cids.items():
        if cid in ready.results:
            out[bid] = pick(run.body_spec(bid), await attempts.result_of(cid), None)
        else:
            out[bid] = None
    return out


async def _until(attempts: Attempts, run: LoopRun, results: dict[str, Any]) -> bool:
    cond = run.spec.until
    if cond is None:
        return False
    ready = attempts.ready
    values: dict[str, Any] = {}
    for ref in condition_refs(cond):
        head, _, member = ref.partition(".")
        if head == "iteration":
            values[ref] = run.k
        elif head == "previous":
            values[ref] = run.item_value(run.marker, ref)
        elif head in run.cids:
            cid = run.cids[head]
            if cid not in ready.results:
                values[ref] = MISSING
            else:
                spec = run.body_spec(head)
                values[ref] = pick(spec, await attempts.result_of(cid), member or None)
        elif head == "inputs":
            values[ref] = attempts.workflow_input(member)
        elif head in ready.results:
            values[ref] = pick(ready.node(head), await attempts.result_of(head), member or None)
        else:
            values[ref] = MISSING
    return evaluate(cond, values.__getitem__)


async def loop_step(attempts: Attempts, node: NodeSpec, started: datetime) -> Finished:
    """The loop node's attempt (see the module docstring)."""
    spec = node.loop
    assert spec is not None
    ready = attempts.ready
    run = ready.groups.get(node.id)
    if run is None:
        k, previous, done = await _recorded(attempts, node.id)
        if done:
            return Finished(node.id, FinishedKind.OK, started, value=previous)
        run = LoopRun(node, spec, k, previous)
        ready.open_group(run)
        if not run.finished:
            return Finished(node.id, FinishedKind.OPENED, started)
    assert isinstance(run, LoopRun)
    if run.complete:
        return Finished(node.id, FinishedKind.OK, started, value=run.previous)
    results = await _gather(attempts, run)
    broken = [
        bid
        for bid, cid in run.cids.items()
        if cid in ready.failed and not run.body_spec(bid).continue_on_failure
    ]
    if broken:
        first = ready.failed[run.cids[broken[0]]].splitlines()[0]
        error = TaskError(
            f"loop '{node.id}' iteration {run.k}: body node '{broken[0]}' failed: {first}",
            node_id=node.id,
        )
        return Finished(node.id, FinishedKind.ERROR, started, error=error)
    try:
        done = await _until(attempts, run, results)
    except Exception as exc:
        error = TaskError(f"loop '{node.id}': its until condition could not be evaluated: {exc}")
        return Finished(node.id, FinishedKind.ERROR, started, error=error)
    done = done or run.k + 1 >= spec.max_iterations
    run.next_done = done
    run.next_results = results
    value = {"iteration": run.k, "results": results, "done": done}
    return Finished(run.marker, FinishedKind.OK, started, value=value, via=node.id)
