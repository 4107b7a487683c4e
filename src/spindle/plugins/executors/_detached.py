"""The stand-in for the task context, for tasks run in another process.

The live :class:`~spindle.TaskContext` belongs to the engine's process; a
function running in a subprocess or a process pool gets a
:class:`DetachedContext` instead: the same data (ids, inputs, outputs, run
dir, attempt, idempotency key) and the same durable calls
(:class:`~spindle.core.plugin.DurableCalls`: ``ctx.step``, ``ctx.map``,
``await ctx.astep``, ``ctx.ask_user`` ...). In the child, the executor attaches
it to the engine's ledger through the sub-step channel
(:mod:`spindle.plugins.executors._channel`); unattached (the task's context
was built by hand, with no engine) its steps are kept in memory, once per
call, as the engine-less :class:`~spindle.TaskContext`'s are.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import define, field

from spindle.core.errors import TaskError
from spindle.core.plugin import DurableCalls

if TYPE_CHECKING:
    from spindle import TaskContext
    from spindle.core.model import StepRecord
    from spindle.core.plugin import StepLog
    from spindle.plugins.payloads import PythonCall

__all__ = ["DetachedContext", "detach_kwargs", "detached_request"]


@define
class DetachedContext(DurableCalls):
    """What a task in another process knows about its node, and its durable calls.

    Attributes mirror :class:`~spindle.TaskContext` (``idempotency_key`` is
    ``RUN:NODE``, copied from it); ``executor`` names the executor kind.
    ``recorded`` and ``steps`` are empty until :meth:`attach` connects them to
    the engine's. ``env`` is what the engine's observers gave the node's process
    (see :meth:`environment`).
    """

    run_id: str
    node_id: str
    inputs: dict[str, Any]
    outputs: dict[str, Path | None]
    run_dir: Path
    workflow_inputs: dict[str, Any] = field(factory=dict)
    attempt: int = 1
    executor: str = ""
    idempotency_key: str = ""
    env: dict[str, str] = field(factory=dict)
    recorded: Mapping[str, StepRecord] = field(factory=dict, repr=False)
    steps: StepLog | None = field(default=None, repr=False)
    new_calls: dict[str, Any] = field(factory=dict, repr=False)
    _call_index: int = field(default=0, repr=False)

    @classmethod
    def from_task(cls, task: TaskContext, executor: str) -> DetachedContext:
        """Copy the data of ``task`` (its recorded calls stay with the engine)."""
        return cls(
            run_id=task.run_id,
            node_id=task.node_id,
            inputs=dict(task.inputs),
            outputs=dict(task.outputs),
            run_dir=task.run_dir,
            workflow_inputs=dict(task.workflow_inputs),
            attempt=task.attempt,
            executor=executor,
            idempotency_key=task.idempotency_key,
            env=task.environment(),
        )

    @property
    def name(self) -> str:
        """The node id."""
        return self.node_id

    def environment(self) -> dict[str, str]:
        """The variables the engine's observers gave this node's process (``TRACEPARENT``
        ...), as :meth:`spindle.TaskContext.environment`. They are also set in
        ``os.environ`` while the function runs; on a Dask worker running several
        tasks in threads, read them here rather than from ``os.environ``."""
        return dict(self.env)

    def attach(self, steps: StepLog, recorded: Mapping[str, StepRecord]) -> None:
        """Make sub-steps through ``steps`` and replay from ``recorded`` (the engine's)."""
        self.steps = steps
        self.recorded = recorded


def detach_kwargs(kwargs: dict[str, Any], task: TaskContext, executor: str) -> dict[str, Any]:
    """``kwargs`` with the live task context replaced by a :class:`DetachedContext`."""
    out = dict(kwargs)
    for k, v in kwargs.items():
        if v is task:
            out[k] = DetachedContext.from_task(task, executor)
    return out


def detached_request(
    payload: PythonCall, task: TaskContext, executor: str, where: str
) -> dict[str, Any]:
    """What a fresh process needs to call ``payload``: its reference, picklable kwargs,
    and the environment the engine's observers give the node's process (``env``).

    Args:
        executor: the executor kind (kept in the stand-in context).
        where: how to name the other process in errors ("a process pool").

    Raises:
        TaskError: the callable has no importable ``module:qualname`` reference.
    """
    if payload.reference is None:
        raise TaskError(
            f"node '{task.node_id}': cannot run '{payload.name}' in {where}: it has no "
            f"importable reference; use the inline executor or a module-level function",
            node_id=task.node_id,
        )
    return {
        "reference": payload.reference,
        "kwargs": detach_kwargs(payload.kwargs, task, executor),
        "sys_path": payload.sys_path,
        "is_async": payload.is_async,
        "env": task.environment(),
    }
