"""How a drive ends: the run's output, whether it failed, and the batches that end it
(or leave it waiting).

The driver ends a run by committing one of these batches through its
journal; a cancel recorded by another process uses the same one, so every
cancelled run reads alike whoever cancelled it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from spindle.core.engine._results import pick
from spindle.core.model import LifecycleEventType, RunStatus, StepKind, StepStatus, run_key
from spindle.core.workflow import Unfilled, fill_templates

if TYPE_CHECKING:
    from spindle.core.engine._journal import Pending, RunJournal
    from spindle.core.engine._ready import ReadySet
    from spindle.core.model import RunState
    from spindle.core.workflow import Workflow

__all__ = [
    "cancel_batch",
    "event_keys",
    "fail_batch",
    "run_failure",
    "run_output",
    "runaway",
    "wait_batch",
]


def cancel_batch(journal: RunJournal, reason: str, event_id: str | None = None) -> Pending:
    """The batch that ends a run as cancelled (and gives its lease up)."""
    state = journal.state
    pending = journal.pending()
    journal.record(
        pending, "", StepKind.RUN, StepStatus.CANCELLED, run_key(state.run_id), error=reason
    )
    state.status = RunStatus.CANCELLED
    state.error = journal.secrets.scrub(reason)
    state.waits = []
    journal.event(pending, LifecycleEventType.RUN_CANCELLED, reason=reason)
    if event_id is not None:
        pending.consume.append(event_id)
    pending.release = True
    return pending


def fail_batch(journal: RunJournal, message: str, pending: Pending | None = None) -> Pending:
    """The batch (``pending``, or a new one) that ends a run as failed with ``message``."""
    state = journal.state
    pending = pending or journal.pending()
    state.status = RunStatus.FAILED
    state.error = journal.secrets.scrub(message)
    state.waits = []
    journal.record(
        pending, "", StepKind.RUN, StepStatus.FAILED, run_key(state.run_id), error=message
    )
    journal.event(pending, LifecycleEventType.RUN_FAILED, error=message)
    pending.release = True
    return pending


def wait_batch(
    journal: RunJournal, pending: Pending, node_id: str | None, *, reason: str | None = None
) -> Pending:
    """The batch that leaves a run ``waiting`` (and gives its lease up) on its open
    waits, or, with ``reason``, parked on what it lacks (no wait to answer)."""
    state = journal.state
    state.status = RunStatus.WAITING
    if reason is None:
        journal.event(
            pending,
            LifecycleEventType.RUN_WAITING,
            node_id,
            waits=[w.key for w in state.waits],
            reasons=[w.reason.value for w in state.waits],
        )
    else:
        state.error = journal.secrets.scrub(reason)
        journal.event(pending, LifecycleEventType.RUN_WAITING, node_id, waits=[], reason=reason)
    pending.release = True
    return pending


async def run_output(
    workflow: Workflow, ready: ReadySet, fetch: Callable[[str], Awaitable[Any]]
) -> Any:
    """The run's output: the ``output`` node's result (or ``NODE.OUTPUT``), else every
    completed leaf's result by node id."""
    if isinstance(workflow.output, dict):
        picked = {}
        for name, ref in workflow.output.items():
            head, _, member = ref.partition(".")
            picked[name] = (
                pick(workflow.nodes[head], await fetch(head), member or None)
                if head in ready.results
                else None
            )
        return picked
    if workflow.output:
        head, _, member = workflow.output.partition(".")
        return pick(workflow.nodes[head], await fetch(head), member or None)
    leaves = [n for n in ready.leaves() if n in ready.results]
    return {n: pick(ready.node(n), await fetch(n), None) for n in leaves}


def run_failure(workflow: Workflow, ready: ReadySet) -> str | None:
    """Why a run with no node left failed, or None when it completed.

    A node that failed without ``continue_on_failure`` fails the run; failures
    the nodes tolerate fail it only when no path completed — neither the
    output node (when the workflow names one) nor any leaf. The message names
    each failed node with the first line of its error.
    """
    failed = ready.failed
    if not failed:
        return None
    untolerated = [
        n for n in ready.order if n in failed and not workflow.nodes[n].continue_on_failure
    ]
    if untolerated:
        return "; ".join(_first_line(failed[n]) for n in untolerated)
    if isinstance(workflow.output, dict):
        if all(ref.partition(".")[0] in ready.results for ref in workflow.output.values()):
            return None
    elif workflow.output:
        if workflow.output.partition(".")[0] in ready.results:
            return None
    elif any(n in ready.results for n in ready.leaves()):
        return None
    return "every path of the run failed: " + "; ".join(
        _first_line(failed[n]) for n in ready.order if n in failed
    )


def event_keys(workflow: Workflow, state: RunState) -> list[str]:
    """The event keys the workflow's effect nodes wait on in this run (for the unsettled
    snapshot). A key made from a node's inputs is left out: the node's own wait, if it
    got that far, holds it."""
    keys: list[str] = []
    for node in workflow.nodes.values():
        if node.effect is not None:
            try:
                handler = fill_templates(node.effect, state.run_id, state.inputs, None)
            except Unfilled:
                continue
            keys.extend(handler.event_keys())
    return keys


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else text


def runaway(max_steps: int) -> str:
    """Why a run whose ledger reached ``max_steps`` records fails."""
    return (
        f"run exceeded max_steps={max_steps} ledger records (a runaway loop?); raise "
        f"max_steps in spindle.toml or the workflow if this is expected"
    )
