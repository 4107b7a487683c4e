"""``subworkflow`` and ``handoff``: runs that start other runs."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from attrs import define, field

from spindle import (
    Effect,
    EffectContext,
    EffectHandler,
    EffectOutcome,
    RunNotFound,
    RunState,
    RunStatus,
    WaitReason,
    WaitState,
)

if TYPE_CHECKING:
    from spindle import Workflow


@define
class SubworkflowHandler(EffectHandler, kind="subworkflow"):
    """Run another workflow as a child; its output is this node's result.

    ``workflow`` is a file path (relative to the parent's file) or a name the
    engine knows. The child's inputs are ``inputs`` overlaid with the node's
    resolved inputs. The parent waits while the child waits and resumes when
    it finishes; cancelling the parent cancels the child. The child's run id
    is derived from the parent's run and node, so a re-run never starts a
    second child.

    A node written ``workflow: PATH`` (or ``workflow: {path: PATH, output:
    ..., max_depth: N}``) is this effect. A run chain deeper than
    ``max_depth`` (a workflow that starts itself, say) fails the node instead
    of starting runs without end.

    Attributes:
        workflow: a workflow file (relative to this one; checked to exist when this
            file loads) or a name the engine knows.
        inputs: literal inputs for the child, overlaid by the node's resolved inputs.
        output: what of the child is this node's result: a reference into the child
            (`NODE` or `NODE.OUTPUT`) or a mapping of name to one; default: the
            child's own output.
        max_depth: how many runs deep a chain of sub-workflows may go, counting this
            run's parents and the child.
    """

    workflow: str
    inputs: dict[str, Any] = field(factory=dict)
    output: str | dict[str, str] | None = None
    max_depth: int = 10

    def workflow_targets(self) -> dict[str, str]:
        """The child workflow (a file is checked to exist when the parent's file loads)."""
        return {"workflow": self.workflow}

    async def handle(self, run: RunState, effect: Effect, ctx: EffectContext) -> EffectOutcome:
        """Start (or find) the child run and drive it."""
        wf = ctx.runs.resolve(self.workflow)
        if self.output is not None:
            picked = _with_output(wf, self.output)
            if isinstance(picked, str):
                return EffectOutcome.failed(picked)
            wf = picked
        chain = await _chain(run, ctx, self.max_depth)
        if len(chain) >= self.max_depth:
            path = " -> ".join([*reversed(chain), f"({wf.name})"])
            return EffectOutcome.failed(
                f"sub-workflow '{wf.name}' not started: it would be {len(chain) + 1} runs deep, "
                f"more than max_depth {self.max_depth} ({path}); a workflow that starts itself "
                f"needs a condition (when:) that ends it, or raise max_depth"
            )
        child = await ctx.runs.run_child(wf, {**self.inputs, **ctx.inputs})
        if child.status == RunStatus.COMPLETED:
            return EffectOutcome.completed(child.output)
        if child.status.terminal:
            return EffectOutcome.failed(
                f"sub-workflow run {child.run_id} ({wf.name}) {child.status.value}: {child.error}"
            )
        return EffectOutcome.waiting(
            WaitState(ctx.wait_key, WaitReason.SUBWORKFLOW, ctx.node_id, child_run_id=child.run_id)
        )


def _with_output(wf: Workflow, output: str | dict[str, str]) -> Workflow | str:
    """A copy of ``wf`` whose run output is ``output``, or why ``output`` does not fit it."""
    refs = output.values() if isinstance(output, dict) else [output]
    unknown = [r for r in refs if r.partition(".")[0] not in wf.nodes]
    if unknown:
        return (
            f"sub-workflow '{wf.name}': output refers to no node of it: {', '.join(unknown)} "
            f"(its nodes: {', '.join(wf.nodes)})"
        )
    child = copy.copy(wf)
    child.nodes = dict(wf.nodes)
    child.output = dict(output) if isinstance(output, dict) else output
    return child


async def _chain(run: RunState, ctx: EffectContext, most: int) -> list[str]:
    """Run ids from ``run`` up through its parents (at most ``most`` of them)."""
    chain = [run.run_id]
    parent = run.parent_run_id
    while parent and len(chain) < most:
        chain.append(parent)
        try:
            parent = (await ctx.store.load_run(parent)).parent_run_id
        except RunNotFound:  # a parent removed from the store ends the chain
            break
    return chain


@define
class HandoffHandler(EffectHandler, kind="handoff"):
    """Hand the node's inputs (or ``payload``) to a follow-on run of ``target``.

    The envelope is persisted, the target run started and the envelope
    acknowledged; the node's result is ``{"run_id": ..., "target": ...}``.
    A node that runs again (after a crash) finds the same envelope and the
    same follow-on run, so a handoff is made once.

    Attributes:
        target: the follow-on workflow: a file (relative to this one; checked to exist
            when this file loads) or a known name.
        payload: what to hand over; default: the node's resolved inputs.
    """

    target: str
    payload: Any = None

    def workflow_targets(self) -> dict[str, str]:
        """The follow-on workflow (a file is checked to exist when this file loads)."""
        return {"target": self.target}

    async def handle(self, run: RunState, effect: Effect, ctx: EffectContext) -> EffectOutcome:
        """Start the follow-on run."""
        payload = self.payload if self.payload is not None else dict(ctx.inputs)
        follow_on = await ctx.runs.hand_off(self.target, payload)
        return EffectOutcome.completed({"run_id": follow_on, "target": self.target})
