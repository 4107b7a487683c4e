"""The engine builds a step's objects by position, where a keyword call costs it more.

``Attempts.task_context``, ``Attempts.run``, ``RunJournal.record`` and
``RunJournal._write``, the ``python`` runtime and the ``inline`` executor pass
their fields in the classes' field order. A field added or moved in the middle
of one of these classes would shift every value after it into the wrong field
without an error, so these tests hold the order the engine passes; and one run
checks what a task then sees, field by field.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import attrs
import pytest

from spindle import Settings, Workflow
from spindle.core.engine import Engine
from spindle.core.engine._finished import Finished
from spindle.core.engine._steps import AttemptSteps
from spindle.core.model import StepRecord
from spindle.core.plugin import Outcome, TaskContext
from spindle.core.store import Commit
from spindle.plugins.payloads import PythonCall


def names(cls: type, count: int) -> list[str]:
    return [f.alias or f.name for f in attrs.fields(cls)][:count]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cls", "order"),
    [
        (
            TaskContext,
            [
                "run_id",
                "node_id",
                "node",
                "inputs",
                "outputs",
                "run_dir",
                "workflow_inputs",
                "attempt",
                "runtime",
                "executor",
                "middleware",
                "workflow",
                "recorded",
                "new_calls",
                "secret_values",
                "steps",
                "node_check",
                "env_source",
            ],
        ),
        (
            Commit,
            [
                "state",
                "records",
                "consume_events",
                "token",
                "create",
                "state_changed",
                "lease",
                "release_lease",
                "state_digest",
                "ledger_key_id",
                "state_text",
            ],
        ),
        (
            Finished,
            [
                "node_id",
                "kind",
                "started_at",
                "value",
                "error",
                "effect",
                "outcome",
                "ctx",
                "links",
                "via",
                "cached",
            ],
        ),
        (
            StepRecord,
            [
                "run_id",
                "seq",
                "node_id",
                "kind",
                "status",
                "idempotency_key",
                "attempt",
                "result",
                "error",
                "started_at",
                "finished_at",
                "prev_hash",
                "record_hash",
                "name",
            ],
        ),
        (Outcome, ["value", "stdout", "stderr", "exit_code", "duration"]),
        (PythonCall, ["function", "kwargs", "reference", "name", "is_async", "sys_path"]),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else "",
)
def test_the_fields_the_engine_passes_by_position_keep_their_order(
    cls: type, order: list[str]
) -> None:
    assert names(cls, len(order)) == order


def test_a_task_sees_each_field_of_its_context_as_the_engine_meant_it(tmp_path: Path) -> None:
    """A task's context, built by position, holds each value in the field named for it."""
    seen: dict[str, Any] = {}
    wf = Workflow("positions")

    @wf.node
    def first() -> int:
        return 7

    @wf.node
    def second(first: int, ctx: TaskContext) -> int:
        seen.update(
            run_id=ctx.run_id,
            node_id=ctx.node_id,
            node=ctx.node.id,
            inputs=dict(ctx.inputs),
            outputs=dict(ctx.outputs),
            run_dir=ctx.run_dir,
            attempt=ctx.attempt,
            runtime=ctx.runtime.kind_name if ctx.runtime is not None else None,
            executor=ctx.executor.kind_name if ctx.executor is not None else None,
            workflow=ctx.workflow.name if ctx.workflow is not None else None,
            recorded=type(ctx.recorded).__name__,
            new_calls=ctx.new_calls,
            secret_values=ctx.secret_values,
            steps=type(ctx.steps),
            node_check=callable(ctx.node_check),
            env_source=ctx.env_source,
        )
        return first + 1

    async def main() -> Any:
        settings = Settings(runs_dir=str(tmp_path / "runs"))
        async with Engine("memory://", settings=settings) as engine:
            return await engine.run(wf)

    state = asyncio.run(main())
    assert state.output == {"second": 8}
    assert seen == {
        "run_id": state.run_id,
        "node_id": "second",
        "node": "second",
        "inputs": {"first": 7},
        "outputs": {},
        "run_dir": tmp_path / "runs" / state.run_id,
        "attempt": 1,
        "runtime": "python",
        "executor": "inline",
        "workflow": "positions",
        "recorded": "dict",
        "new_calls": {},
        "secret_values": (),
        "steps": AttemptSteps,
        "node_check": True,
        "env_source": None,
    }
