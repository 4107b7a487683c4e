"""Where a run stands before a command drives it on: its node count and how many
of its nodes ended already, for the progress display's done/total.

Read once, before the drive, from the stored definition and ledger. Anything
that cannot be read leaves the display without a total (the drive itself
then reports the real problem); this never fails a command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from spindle.core.engine import Engine
    from spindle.core.model import RunState
    from spindle.core.workflow import Workflow

__all__ = ["Counts", "rerun_counts", "run_counts"]


class Counts(TypedDict, total=False):
    """Keyword arguments for :meth:`Progress.begin` (empty when nothing could be read)."""

    total: int
    done: int
    failed: int


_ENDED = frozenset({"completed", "failed", "skipped"})


async def _last_status(engine: Engine, run_id: str, nodes: Any) -> dict[str, str]:
    last: dict[str, str] = {}
    for rec in await engine.store.ledger(run_id):
        if rec.kind.value == "node" and rec.node_id in nodes:
            last[rec.node_id] = rec.status.value
    return last


async def run_counts(
    engine: Engine, state: RunState, *, reopened: bool = False, workflow: Workflow | None = None
) -> Counts:
    """``total``, ``done`` and ``failed`` of ``state``'s nodes, for :meth:`Progress.begin`.

    With ``reopened`` (``retry``) failed and skipped nodes are to run again, so
    only completed ones count as done; ``workflow`` is the definition the
    command drives with, when it replaces the stored one.
    """
    try:
        if workflow is not None:
            nodes: Any = workflow.nodes
        else:
            nodes = (await engine.store.get_definition(state.definition_id)).get("nodes") or {}
        last = await _last_status(engine, state.run_id, nodes)
    except Exception:  # a display aid: the drive reports real problems
        return {}
    kept = {"completed"} if reopened else _ENDED
    return {
        "total": len(nodes),
        "done": sum(1 for s in last.values() if s in kept),
        "failed": 0 if reopened else sum(1 for s in last.values() if s == "failed"),
    }


async def rerun_counts(
    engine: Engine, source: RunState, from_node: str, workflow: Workflow | None = None
) -> Counts:
    """``total`` and ``done`` for a rerun of ``source`` from ``from_node``: the nodes
    it keeps are those completed in the source that do not depend on ``from_node``."""
    try:
        wf = workflow
        if wf is None:
            from spindle.core.workflow import Workflow

            definition = await engine.store.get_definition(source.definition_id)
            wf = Workflow.from_dict(definition, registry=engine.registry)
        if from_node not in wf.nodes:
            return {}
        again = _downstream(wf, from_node)
        last = await _last_status(engine, source.run_id, wf.nodes)
    except Exception:  # a display aid: the rerun reports real problems
        return {}
    kept = sum(1 for n, s in last.items() if s == "completed" and n not in again)
    return {"total": len(wf.nodes), "done": kept}


def _downstream(wf: Workflow, node_id: str) -> set[str]:
    dependants: dict[str, list[str]] = {n: [] for n in wf.nodes}
    for n in wf.nodes:
        for d in wf.dependencies(n):
            dependants.setdefault(d, []).append(n)
    out, todo = {node_id}, [node_id]
    while todo:
        for n in dependants.get(todo.pop(), ()):
            if n not in out:
                out.add(n)
                todo.append(n)
    return out
