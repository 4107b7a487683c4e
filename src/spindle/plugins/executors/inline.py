"""The ``inline`` executor: Python in the engine's own process.

``async def`` functions are awaited on the event loop. Sync functions and
``python_code`` snippets run in a worker thread (:func:`asyncio.to_thread`),
so a slow or blocking task never stalls the loop that drives other nodes,
timers and heartbeats. Exceptions propagate unchanged (the engine records
them); so does :class:`~spindle.core.plugin.Suspend`, the signal a task
raises through ``ctx.ask_user`` & co.

What a task prints to ``sys.stdout`` and ``sys.stderr`` is kept in the
node's log files, ``RUN_DIR/logs/NODE.stdout`` and ``.stderr`` (shown by
``spindle logs RUN``), and, with ``echo`` (the default), still printed as
well. Writes below Python's streams (C extensions, ``os.system``, child
processes) are not captured: they go to the process's own file descriptors
(see :mod:`spindle.plugins.executors._capture`).

A timeout or cancel stops waiting for a sync function, but Python cannot
kill a thread: the function runs on to its end and its result is dropped.
Use the ``subprocess`` executor for work that must really stop: durable
sub-steps (``ctx.step``, ``ctx.map``, ``await ctx.astep`` ...) and
mid-function effects work there, and in ``process_pool``, as they do here.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import TYPE_CHECKING, Any, ClassVar

from attrs import define

from spindle import Executor, Outcome
from spindle.plugins.executors._capture import begin_task_output, end_task_output
from spindle.plugins.payloads import CodePayload, PythonCall

if TYPE_CHECKING:
    from spindle import TaskContext

__all__ = ["InlineExecutor"]


def _exec_code(payload: CodePayload) -> Any:
    exec(payload.code, payload.namespace)  # running the node's code is the point
    return payload.namespace.get("result")


@define
class InlineExecutor(Executor[PythonCall | CodePayload], kind="inline"):
    """Runs Python callables and code in-process: async on the loop, sync in a thread.

    Attributes:
        echo: also print what the task prints to the process's own stdout and
            stderr (it is kept in the node's log files either way).
        log_limit: the most bytes kept in each log file (stdout, stderr) per attempt.
    """

    accepts: ClassVar[tuple[type, ...]] = (PythonCall, CodePayload)

    echo: bool = True
    log_limit: int = 10 * 1024 * 1024

    async def _execute(self, payload: PythonCall | CodePayload, task: TaskContext) -> Outcome:
        """Call the function (or exec the code) and return its value."""
        if not isinstance(payload, PythonCall | CodePayload):
            raise TypeError(
                f"executor 'inline' cannot run a {type(payload).__name__}; it runs PythonCall "
                f"and CodePayload"
            )
        start = time.perf_counter()
        # What it prints goes to the node's logs (no context manager: every step).
        output, token = begin_task_output(task, self.log_limit, self.echo)
        try:
            if isinstance(payload, CodePayload):
                value = await asyncio.to_thread(_exec_code, payload)
            elif payload.is_async:
                value = await payload.function(**payload.kwargs)
            else:
                value = await asyncio.to_thread(payload.function, **payload.kwargs)
                if inspect.isawaitable(value):  # a sync wrapper that returned a coroutine
                    value = await value
        finally:
            end_task_output(output, token)
        # By position (value, stdout, stderr, exit_code, duration): this runs every step.
        return Outcome(value, "", "", None, time.perf_counter() - start)
