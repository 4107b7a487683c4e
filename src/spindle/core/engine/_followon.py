"""Runs that follow from runs: sub-workflow children, handoffs, and what a run's end settles.

:class:`FollowOn` is built once per engine from its services and the few
run operations it needs (:class:`RunOps`): it starts and drives child and
follow-on runs, and when a run ends it takes up the run's handoffs,
cascades a cancel to the run's children, and answers the parent's wait.
Effect handlers reach it through :class:`NodeLinks`, the ``ctx.runs`` of
one request; ids derive from the request, so asking again (a node re-run
after a crash) finds the run already started instead of starting another.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import frozen

from spindle.core.errors import LeaseHeld, RunNotFound
from spindle.core.model import (
    HandoffEnvelope,
    RunState,
    RunStatus,
    child_run_id,
    follow_on_run_id,
    handoff_envelope_id,
)

if TYPE_CHECKING:
    from spindle.core.engine._services import Services
    from spindle.core.workflow import LoadPolicy, Workflow

__all__ = ["FollowOn", "NodeLinks", "RunOps"]

log = logging.getLogger("spindle.engine")

StartRun = Callable[..., Awaitable[RunState]]


@frozen(kw_only=True)
class RunOps:
    """The engine operations follow-on work needs, and nothing else of the engine.

    Attributes:
        start: record a new run: ``start(workflow, inputs, *, run_id, parent_run_id=None,
            parent_wait_key=None, labels=None)``.
        drive: drive a run until it stops: ``drive(run_id, workflow)``.
        answer_child: answer a parent's sub-workflow wait with its child's end:
            ``answer_child(parent_id, wait_key, child_state)``.
        cancel: cancel a run: ``cancel(run_id, reason)``.
    """

    start: StartRun
    drive: Callable[[str, Workflow | None], Awaitable[RunState]]
    answer_child: Callable[[str, str, RunState], Awaitable[RunState]]
    cancel: Callable[[str, str], Awaitable[RunState]]


class FollowOn:
    """Starts, finds and settles the runs that follow from other runs."""

    def __init__(
        self,
        services: Services,
        ops: RunOps,
        workflows: Mapping[str, Workflow],
        policy: LoadPolicy | None,
    ) -> None:
        self.services = services
        self.ops = ops
        self.workflows = workflows
        self.policy = policy

    def resolve(self, target: str, relative_to: Workflow | None = None) -> Workflow:
        """Find a workflow by name (``Engine(workflows=...)``) or by file path (relative to
        the referring workflow's directory), loaded under the engine's load policy."""
        if target in self.workflows:
            return self.workflows[target]
        # The file loader (and YAML) is imported only by runs that start other runs.
        from spindle.core.workflow import load_workflow

        path = Path(target)
        if not path.is_absolute() and relative_to is not None and relative_to.base_dir:
            path = relative_to.base_dir / path
        return load_workflow(path, registry=self.services.registry, policy=self.policy)

    def links(self, run_id: str, workflow: Workflow, effect_key: str, wait_key: str) -> NodeLinks:
        """The ``ctx.runs`` of effect request ``effect_key`` of run ``run_id``."""
        return NodeLinks(self, run_id, workflow, effect_key, wait_key)

    async def _find_or_start(
        self, run_id: str, workflow: Workflow, inputs: Mapping[str, Any], **links: Any
    ) -> RunState:
        try:
            return await self.services.store.load_run(run_id)
        except RunNotFound:
            return await self.ops.start(workflow, inputs, run_id=run_id, **links)

    async def run_child(
        self,
        parent_id: str,
        effect_key: str,
        wait_key: str,
        workflow: Workflow,
        inputs: Mapping[str, Any],
    ) -> RunState:
        """Start (or find) the child run of a request and drive it until it stops."""
        child_id = child_run_id(parent_id, effect_key)
        child = await self._find_or_start(
            child_id, workflow, inputs, parent_run_id=parent_id, parent_wait_key=wait_key
        )
        if not child.status.terminal:
            child = await self.ops.drive(child_id, workflow)
        return child

    async def hand_off(
        self,
        source_id: str,
        target: str,
        payload: Any,
        relative_to: Workflow | None,
        *,
        envelope: HandoffEnvelope | None = None,
    ) -> str:
        """Hand ``payload`` from run ``source_id`` to a follow-on run of ``target``.

        Persists an envelope (unless given one already kept), starts the target
        workflow with the payload as its inputs (a mapping) or as input
        ``payload``, acknowledges the envelope and drives the follow-on run.
        Returns its id, derived from the envelope.
        """
        if envelope is None:
            envelope = HandoffEnvelope(uuid.uuid4().hex, source_id, target, payload)
            await self.services.store.put_handoff(envelope)
        workflow = self.resolve(target, relative_to)
        inputs = payload if isinstance(payload, Mapping) else {"payload": payload}
        child_id = follow_on_run_id(envelope.envelope_id)
        child = await self._find_or_start(
            child_id, workflow, inputs, labels={"handoff_from": source_id}
        )
        await self.services.store.ack_handoff(envelope.envelope_id, child_id)
        if not child.status.terminal:
            await self.ops.drive(child_id, workflow)
        return child_id

    async def settle(
        self,
        state: RunState,
        handoffs: Sequence[HandoffEnvelope] = (),
        relative_to: Workflow | None = None,
    ) -> None:
        """What a run's end sets off: its handoffs, a cancel of its children, its parent."""
        for envelope in handoffs:
            await self.hand_off(
                state.run_id, envelope.target, envelope.payload, relative_to, envelope=envelope
            )
        if state.status == RunStatus.CANCELLED:
            await self.cancel_children(state.run_id)
        await self.tell_parent(state)

    async def cancel_children(self, run_id: str) -> None:
        """Cancel every child run of ``run_id`` that has not ended."""
        for child in await self.services.store.list_runs(parent_run_id=run_id):
            if not child.status.terminal:
                await self.ops.cancel(child.run_id, f"parent run {run_id} cancelled")

    async def tell_parent(self, state: RunState) -> None:
        """Answer the waiting parent of the ended child ``state`` with how it ended."""
        if not (state.parent_run_id and state.parent_wait_key) or not state.status.terminal:
            return
        try:
            parent = await self.services.store.load_run(state.parent_run_id)
        except RunNotFound:
            return
        if parent.status.terminal or not any(w.key == state.parent_wait_key for w in parent.waits):
            return  # the parent drives the child inline and sees its end itself
        try:
            await self.ops.answer_child(parent.run_id, state.parent_wait_key, state)
        except LeaseHeld as exc:
            log.warning("could not resume parent run %s yet: %s", parent.run_id, exc)


def child_outcome(child: RunState) -> tuple[Any, str | None]:
    """``(value, error)`` a sub-workflow wait is answered with when ``child`` ended."""
    if child.status == RunStatus.COMPLETED:
        return child.output, None
    detail = f": {child.error}" if child.error else ""
    return None, f"sub-workflow run {child.run_id} {child.status.value}{detail}"


class NodeLinks:
    """The :class:`~spindle.core.plugin.RunLinks` of one effect request.

    Attributes:
        handoffs: ``(envelope id, target, follow-on run id)`` of each handoff made
            through these links, for the requesting node's commit to announce.
    """

    def __init__(
        self,
        follow_on: FollowOn,
        run_id: str,
        workflow: Workflow,
        effect_key: str,
        wait_key: str,
    ) -> None:
        self._follow_on = follow_on
        self._run_id = run_id
        self._workflow = workflow
        self._effect_key = effect_key
        self._wait_key = wait_key
        self.handoffs: list[tuple[str, str, str]] = []

    def resolve(self, target: str) -> Workflow:
        """The workflow ``target`` names, relative to the requesting workflow."""
        return self._follow_on.resolve(target, self._workflow)

    async def run_child(self, workflow: Workflow, inputs: Mapping[str, Any]) -> RunState:
        """Start (or find) this request's sub-workflow run and drive it until it stops."""
        return await self._follow_on.run_child(
            self._run_id, self._effect_key, self._wait_key, workflow, inputs
        )

    async def hand_off(self, target: str, payload: Any = None) -> str:
        """Hand ``payload`` to a follow-on run of ``target`` (once per request)."""
        envelope = HandoffEnvelope(
            handoff_envelope_id(self._effect_key), self._run_id, target, payload
        )
        await self._follow_on.services.store.put_handoff(envelope)
        child = await self._follow_on.hand_off(
            self._run_id, target, payload, self._workflow, envelope=envelope
        )
        self.handoffs.append((envelope.envelope_id, target, child))
        return child
