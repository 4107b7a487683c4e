"""Nodes that returned: their results as the ledger keeps them, and several in one commit.

When several attempts of one run have ended by the time the driver looks
(a fan-out of quick nodes), their completions share one commit: each is
recorded as it would be alone, in the order they finished, and none is
acted on (its dependants started) before that commit. The design's rule --
no outcome is acted on before its commit -- holds; a crash before the commit
loses them all, and each node runs again on resume, as a single one would.
An attempt that did not simply return (an error, an effect, a wait, a
result that cannot be recorded) is left for the driver to act on alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from spindle.core.engine._attempt import FinishedKind
from spindle.core.engine._caching import keep_result, waited
from spindle.core.engine._results import storable_sized
from spindle.core.errors import StoreError
from spindle.core.model import LifecycleEventType, StepKind, StepStatus, cache_hit_key, node_key

if TYPE_CHECKING:
    from spindle.core.engine._attempt import Finished
    from spindle.core.engine._journal import Pending, RunJournal
    from spindle.core.engine._outcomes import Outcomes
    from spindle.core.engine._results import Results
    from spindle.core.engine._services import Services
    from spindle.core.workflow import NodeSpec

__all__ = ["commit_completed", "node_result", "record_completed"]


async def node_result(
    services: Services, results: Results, run_id: str, node: NodeSpec, f: Finished
) -> Any:
    """What the ledger keeps of the value ``f`` returned (its declared outputs collected,
    a large result offloaded to the artifact store).

    Raises:
        TaskError: the value cannot be recorded, or a declared output is missing.
        StoreError: the store failed to keep an output or a large result.
    """
    plan = f.cached
    if plan is not None and plan.hit is not None:
        return f.value  # reused: recorded as the source run recorded it
    value = f.value
    if value is None or isinstance(value, str | bool | int | float):
        size = -1  # a scalar is kept as it is (what storable_sized says, two calls less)
    else:
        value, size = storable_sized(node.id, value)
    if node.outputs:
        size = -1
        assert f.ctx is not None  # a task's outcome carries its context
        outputs = await services.tasks.collect_outputs(run_id, node, f.ctx, f.value)
        value = {"value": value, "outputs": outputs}
    if not results.fits(value, size):
        value = await results.offload(node.id, value, size)
    ctx = f.ctx
    if (
        plan is not None
        and ctx is not None
        and not waited(ctx.recorded, run_id, node.id, services.registry)
    ):
        await keep_result(plan, node, run_id, value, ctx.outputs, services.store)
    return value


def record_completed(
    journal: RunJournal, pending: Pending, node_id: str, attempt: int, result: Any, f: Finished
) -> None:
    """Add a node's completion, with its result as the ledger keeps it, to ``pending``
    (after the ``cache`` record naming where a reused result came from)."""
    plan = f.cached
    if plan is not None and plan.hit is not None:
        journal.record(
            pending,
            node_id,
            StepKind.CACHE,
            StepStatus.COMPLETED,
            cache_hit_key(journal.state.run_id, node_id),
            attempt=attempt,
            result=plan.source(),
            started_at=f.started_at,
        )
    journal.record(  # by position (see RunJournal.record): attempt, result, error, started
        pending,
        node_id,
        StepKind.NODE,
        StepStatus.COMPLETED,
        node_key(journal.state.run_id, node_id),
        attempt,
        result,
        None,
        f.started_at,
    )
    if plan is not None and plan.hit is not None:
        source = plan.source()
        journal.event(
            pending,
            LifecycleEventType.NODE_COMPLETED,
            node_id,
            attempt=attempt,
            cached_from={"run_id": source["run_id"], "node_id": source["node_id"]},
        )
    elif journal.emitter.active:  # (asked here: with no observer, no call a step)
        journal.event(pending, LifecycleEventType.NODE_COMPLETED, node_id, attempt=attempt)
    pending.light = True


async def commit_completed(
    outcomes: Outcomes, finished: list[Finished], *, last: bool
) -> list[Finished]:
    """Record every plain completion in ``finished`` in one commit.

    ``last`` says nothing else runs or needs a commit before the run's finish:
    then, when these are the run's last nodes, their records are kept for the
    commit of the run's end instead (as a last node's alone is).

    Returns:
        The attempts the driver must act on one by one (they did not simply
        return, or their result cannot be recorded), in the order they finished.

    Raises:
        StoreError: keeping a result failed (the drive stops, to be resumed).
        LeaseLost: the run's lease was taken over.
    """
    journal = outcomes.journal
    pending: Pending | None = None  # taken at the first completion to record
    recorded = 0
    others: list[Finished] = []
    for f in finished:
        if (
            f.kind is not FinishedKind.OK
            or f.via is not None
            or outcomes.ready.adds_nodes(f.node_id)
        ):
            others.append(f)
            continue
        node = outcomes.ready.node(f.node_id)
        try:
            result = await node_result(
                outcomes.services, outcomes.results, journal.state.run_id, node, f
            )
        except StoreError:
            raise
        except Exception:
            others.append(f)  # acted on alone, which records why it cannot be kept
            continue
        if pending is None:
            pending = journal.pending()
        record_completed(journal, pending, f.node_id, journal.attempts.get(f.node_id, 1), result, f)
        recorded += 1
    if pending is None:
        return others
    state = outcomes.state
    if last and not others and outcomes.ready.undone == recorded and not state.waits:
        journal.defer(pending)  # the run's last nodes: committed with its end
    else:
        await journal.commit(pending)
    return others
