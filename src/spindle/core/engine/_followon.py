"""Runs that follow from runs: handoffs to follow-on workflows, children ending.

Functions of the engine rather than methods, to keep the engine module about
the run API itself; :class:`~spindle.core._engine.Engine` exposes them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spindle.core.errors import LeaseHeld, RunNotFound
from spindle.core.model import HandoffEnvelope, LifecycleEventType, RunState, RunStatus
from spindle.core.store import Commit

if TYPE_CHECKING:
    from spindle.core.engine._engine import Engine
    from spindle.core.workflow import Workflow

__all__ = ["after_terminal", "handoff", "resolve_workflow"]

log = logging.getLogger("spindle.engine")


async def handoff(
    engine: Engine,
    source: RunState,
    target: str,
    payload: Any = None,
    *,
    relative_to: Workflow | None = None,
    envelope: HandoffEnvelope | None = None,
) -> str:
    """Hand ``payload`` from ``source`` to a follow-on run of ``target``.

    Persists an envelope (unless given one already persisted), starts the target
    workflow with the payload as its inputs (a mapping) or as input ``payload``,
    acknowledges the envelope with the new run id, emits ``handoff_created`` and
    drives the follow-on run. Returns its id.
    """
    if envelope is None:
        envelope = HandoffEnvelope(uuid.uuid4().hex, source.run_id, target, payload)
        await engine.store.put_handoff(envelope)
    wf = engine.resolve_workflow(target, relative_to)
    inputs = payload if isinstance(payload, Mapping) else {"payload": payload}
    child = await engine.start(wf, inputs, labels={"handoff_from": source.run_id})
    await engine.store.ack_handoff(envelope.envelope_id, child)
    if engine.emitter.active:
        fresh = await engine.store.load_run(source.run_id)
        event = engine.emitter.build(
            fresh,
            LifecycleEventType.HANDOFF_CREATED,
            envelope_id=envelope.envelope_id,
            target=target,
            follow_on_run_id=child,
        )
        source.event_seq = fresh.event_seq
        await engine.store.commit(Commit(fresh))
        await engine.emitter.send([event])
    await engine.drive(child, workflow=wf)
    return child


def resolve_workflow(engine: Engine, target: str, relative_to: Workflow | None = None) -> Workflow:
    """Find a workflow by name (``workflows=``) or by file path (relative to the
    referring workflow's directory)."""
    if target in engine.workflows:
        return engine.workflows[target]
    from spindle.core.workflow import load_workflow

    path = Path(target)
    if not path.is_absolute() and relative_to is not None and relative_to.base_dir:
        path = relative_to.base_dir / path
    return load_workflow(path, registry=engine.registry, policy=engine.policy)


async def after_terminal(engine: Engine, state: RunState) -> None:
    """Notify a waiting parent run that its child ``state`` ended."""
    if not (state.parent_run_id and state.parent_wait_key):
        return
    try:
        parent = await engine.store.load_run(state.parent_run_id)
    except RunNotFound:
        return
    if parent.status.terminal or not any(w.key == state.parent_wait_key for w in parent.waits):
        return  # the parent is driving the child inline and will see the result itself
    error = (
        None
        if state.status == RunStatus.COMPLETED
        else (f"sub-workflow run {state.run_id} {state.status.value}: {state.error or ''}".strip())
    )
    try:
        await engine._answer(parent.run_id, state.parent_wait_key, state.output, error=error)
    except LeaseHeld as exc:
        log.warning("could not resume parent run %s yet: %s", parent.run_id, exc)
