"""``subworkflow`` and ``handoff``: runs that start other runs."""

from __future__ import annotations

from typing import Any

from attrs import define, field

from spindle import (
    Effect,
    EffectContext,
    EffectHandler,
    EffectOutcome,
    RunState,
    RunStatus,
    WaitReason,
    WaitState,
)


@define
class SubworkflowHandler(EffectHandler, kind="subworkflow"):
    """Run another workflow as a child; its output is this node's result.

    ``workflow`` is a file path (relative to the parent's file) or a name the
    engine knows. The child's inputs are ``inputs`` overlaid with the node's
    resolved inputs. The parent waits while the child waits and resumes when
    it finishes; cancelling the parent cancels the child. The child's run id
    is derived from the parent's run and node, so a re-run never starts a
    second child.

    Attributes:
        workflow: a workflow file (relative to this one; checked to exist when this
            file loads) or a name the engine knows.
        inputs: literal inputs for the child, overlaid by the node's resolved inputs.
    """

    workflow: str
    inputs: dict[str, Any] = field(factory=dict)

    def workflow_targets(self) -> dict[str, str]:
        """The child workflow (a file is checked to exist when the parent's file loads)."""
        return {"workflow": self.workflow}

    async def handle(self, run: RunState, effect: Effect, ctx: EffectContext) -> EffectOutcome:
        """Start (or find) the child run and drive it."""
        wf = ctx.runs.resolve(self.workflow)
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
