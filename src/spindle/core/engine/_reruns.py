"""Running a failed run again: ``retry`` continues it, ``rerun --from`` starts a new one.

* **retry** opens an ended (failed or cancelled) run again: a ``run`` record
  with status ``retried`` goes in its ledger, the ready set forgets the
  failed and skipped nodes, and they run again from their next attempt —
  completed nodes and sub-steps are kept. Same run id, same ledger.
* **rerun from NODE** starts a new run of the same workflow and inputs whose
  ledger begins with the recorded results of every node that is neither NODE
  nor depends on it (those completed in the source run); NODE and its
  dependants run again. The new run is labelled with its source.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from spindle.core.engine._integrity import continue_chain
from spindle.core.engine._journal import RunJournal
from spindle.core.engine._results import ARTIFACT
from spindle.core.errors import NothingToRetry, ValidationError
from spindle.core.model import (
    LifecycleEventType,
    RunState,
    RunStatus,
    StepKind,
    StepRecord,
    StepStatus,
    node_key,
    run_key,
)

if TYPE_CHECKING:
    from spindle.core.engine._active import ActiveRuns
    from spindle.core.engine._drives import Drives
    from spindle.core.engine._journal import Pending
    from spindle.core.engine._services import Services
    from spindle.core.model import Lease
    from spindle.core.store import Store
    from spindle.core.workflow import Workflow

__all__ = ["downstream", "reopen_batch", "rerun_state", "reused_records", "start_rerun"]


def reopen_batch(journal: RunJournal) -> Pending:
    """The batch that opens an ended run again for ``retry``.

    Raises:
        NothingToRetry: the run completed, or has not ended (resume it instead).
    """
    state = journal.state
    rid = state.run_id
    if state.status == RunStatus.COMPLETED:
        raise NothingToRetry(
            f"run {rid} completed; there is nothing to retry. To run some of it again, "
            f"start a new run from a node: spindle rerun {rid} --from NODE"
        )
    if not state.status.terminal:
        raise NothingToRetry(
            f"run {rid} is {state.status.value}, not failed or cancelled; continue it with "
            f"spindle resume {rid}"
        )
    pending = journal.pending()
    journal.record(
        pending,
        "",
        StepKind.RUN,
        StepStatus.RETRIED,
        run_key(rid),
        result={"was": state.status.value, "error": state.error},
    )
    state.status = RunStatus.RUNNING
    state.error = None
    state.output = None
    state.waits = []
    state.disposition = None
    journal.event(pending, LifecycleEventType.RUN_RESUMED, retried=True)
    return pending


def downstream(workflow: Workflow, node_id: str) -> set[str]:
    """``node_id`` and every node that depends on it, directly or not."""
    if node_id not in workflow.nodes:
        known = ", ".join(workflow.nodes)
        raise ValidationError(
            f"workflow '{workflow.name}' has no node '{node_id}' to rerun from",
            [f"known nodes: {known} @ --from"],
        )
    dependants: dict[str, list[str]] = {n: [] for n in workflow.nodes}
    for n in workflow.nodes:
        for d in workflow.dependencies(n):
            dependants[d].append(n)
    out, todo = {node_id}, [node_id]
    while todo:
        for n in dependants[todo.pop()]:
            if n not in out:
                out.add(n)
                todo.append(n)
    return out


async def reused_records(
    store: Store,
    source: Sequence[StepRecord],
    new_run_id: str,
    workflow: Workflow,
    from_node: str,
) -> list[StepRecord]:
    """Copies, for ``new_run_id``, of the completed records of the nodes a rerun keeps.

    A result kept as an artifact is referenced from the new run too.
    """
    again = downstream(workflow, from_node)
    latest: dict[str, StepRecord] = {}
    for rec in source:
        if rec.kind == StepKind.NODE and rec.node_id in workflow.nodes:
            latest[rec.node_id] = rec
    out = []
    for node_id in workflow.order():
        kept = latest.get(node_id)
        if node_id in again or kept is None or kept.status != StepStatus.COMPLETED:
            continue
        await _reference_artifacts(store, new_run_id, kept.result)
        out.append(
            StepRecord(
                new_run_id,
                -1,
                node_id,
                StepKind.NODE,
                StepStatus.COMPLETED,
                node_key(new_run_id, node_id),
                kept.attempt,
                kept.result,
                None,
                kept.started_at,
                kept.finished_at,
            )
        )
    return out


async def _reference_artifacts(store: Store, run_id: str, result: Any) -> None:
    if isinstance(result, dict) and set(result) == {ARTIFACT}:
        ref = result[ARTIFACT]
        data = await store.get_artifact(ref["digest"])
        await store.put_artifact(run_id, data, media_type="application/json")


def rerun_state(
    source: RunState, from_node: str, labels: Mapping[str, str] | None, run_id: str | None
) -> RunState:
    """The new run a rerun starts: the source's workflow, definition and inputs."""
    return RunState(
        run_id=run_id or uuid.uuid4().hex,
        workflow=source.workflow,
        status=RunStatus.RUNNING,
        inputs=dict(source.inputs),
        definition_id=source.definition_id,
        labels={
            **dict(labels or {}),
            "rerun_of": source.run_id,
            "rerun_from": from_node,
        },
    )


async def start_rerun(
    services: Services,
    drives: Drives,
    active: ActiveRuns,
    lease: Lease,
    run_id: str,
    from_node: str,
    *,
    workflow: Workflow | None,
    secrets: Mapping[str, Any] | None,
    new_run_id: str | None,
) -> RunState:
    """Create the rerun of ``run_id`` from ``from_node`` (leased to us) and drive it."""
    store = services.store
    source = await store.load_run(run_id)
    ledger = await store.ledger(run_id)
    # A rerun reuses the source's results: only from a ledger that ends where it should.
    continue_chain(services.chain, source, len(ledger), ledger[-1].record_hash if ledger else "")
    wf = await services.definitions.for_run(source, workflow, True, ledger)
    state = rerun_state(source, from_node, source.labels, new_run_id)
    records = await reused_records(store, ledger, state.run_id, wf, from_node)
    state.definition_id = await services.definitions.keep(wf)
    await RunJournal.create(store, state, lease, records, services.chain)
    if secrets:
        active.give(state.run_id, secrets)
    return await drives.drive(state.run_id, workflow=wf, lease=lease, created=state, ledger=records)
