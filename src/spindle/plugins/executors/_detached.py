"""A data-only stand-in for the task context, for tasks run in another process.

The live :class:`~spindle.TaskContext` records effects and sub-steps for the
engine in *this* process; a function running in a subprocess or a process
pool cannot reach it. It gets a :class:`DetachedContext` instead: the same
data (ids, inputs, outputs, run dir, attempt, idempotency key), while the
effect API raises :class:`EffectUnavailable` naming the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from attrs import define, field

from spindle.core.errors import SpindleError, TaskError

if TYPE_CHECKING:
    from spindle import TaskContext
    from spindle.plugins.payloads import PythonCall

__all__ = ["DetachedContext", "EffectUnavailable", "detach_kwargs", "detached_request"]


class EffectUnavailable(SpindleError, RuntimeError):
    """A task in another process used the effect API, which only works in the engine's process."""


@define
class DetachedContext:
    """What a task in another process knows about its node; effects raise.

    Attributes mirror :class:`~spindle.TaskContext` (``idempotency_key`` is
    ``RUN:NODE``, copied from it); ``executor`` names the executor kind for
    error messages.
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

    @classmethod
    def from_task(cls, task: TaskContext, executor: str) -> DetachedContext:
        """Copy the data of ``task``."""
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
        )

    @property
    def name(self) -> str:
        """The node id."""
        return self.node_id

    def _unavailable(self, what: str) -> NoReturn:
        raise EffectUnavailable(
            f"ctx.{what}() is not available in node '{self.node_id}': it runs in another process "
            f"(executor '{self.executor}'), where the engine cannot record effects or steps; "
            f"run the node with the inline executor to use ctx.{what}()"
        )

    def step(self, fn: Any, *args: Any, **kwargs: Any) -> NoReturn:
        """Unavailable here: raises :class:`EffectUnavailable`."""
        self._unavailable("step")

    async def astep(self, fn: Any, *args: Any, **kwargs: Any) -> NoReturn:
        """Unavailable here: raises :class:`EffectUnavailable`."""
        self._unavailable("astep")

    def effect(self, kind: str, **params: Any) -> NoReturn:
        """Unavailable here: raises :class:`EffectUnavailable`."""
        self._unavailable("effect")

    def ask_user(self, prompt: str, choices: Any = None, *, key: str | None = None) -> NoReturn:
        """Unavailable here: raises :class:`EffectUnavailable`."""
        self._unavailable("ask_user")

    def wait_for_event(self, key: str, *, timeout: float | None = None) -> NoReturn:
        """Unavailable here: raises :class:`EffectUnavailable`."""
        self._unavailable("wait_for_event")

    def sleep(self, until: Any) -> NoReturn:
        """Unavailable here: raises :class:`EffectUnavailable`."""
        self._unavailable("sleep")


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
    """What a fresh process needs to call ``payload``: its reference, picklable kwargs.

    Args:
        executor: the executor kind (named in errors the stand-in context raises).
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
    }
