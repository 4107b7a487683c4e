"""The ``process_pool`` executor: CPU-bound Python functions on a pool of worker processes.

::

    crunch:
      runtime: {kind: python, function: "stats:crunch"}
      executor: {kind: process_pool, max_workers: 4}

The pool (:class:`concurrent.futures.ProcessPoolExecutor`) is created on first
use and shared by every node this executor instance runs; the engine's
``aclose()`` shuts it down. Workers start with ``forkserver`` where the
platform has it, else ``spawn``: forking the engine process itself, which has
threads, can deadlock. The function crosses to the worker by its
``module:qualname`` reference, so it must be a module-level function; its
arguments are pickled, with ``ctx`` replaced by a stand-in whose durable
calls (``ctx.step``, ``ctx.map``, ``await ctx.astep``, ``ctx.ask_user`` ...)
reach the engine over a socket, so each sub-step is committed to the run's
ledger before it returns, as in the engine's process (see
:mod:`spindle.plugins.executors._channel`).

What the function prints to ``sys.stdout`` and ``sys.stderr`` is kept in the
node's log files, as with the ``inline`` executor (``spindle logs RUN``).

A timeout or cancel stops waiting, but a call already running in a worker
runs on to its end (the pool cannot interrupt it); its later sub-steps are
refused, so nothing more of it is recorded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
import pickle
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from attrs import define, field

from spindle import Executor, Outcome, TaskError
from spindle.core.plugin import Suspend
from spindle.plugins.executors._capture import log_spec
from spindle.plugins.executors._channel import serve_steps
from spindle.plugins.executors._child import call_in_worker, init_worker
from spindle.plugins.executors._detached import detached_request
from spindle.plugins.payloads import PythonCall

if TYPE_CHECKING:
    from spindle import TaskContext

__all__ = ["ProcessPoolExecutor"]

StartMethod = Literal["fork", "forkserver", "spawn"]


def _default_start_method() -> StartMethod:
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


@define
class ProcessPoolExecutor(Executor[PythonCall], kind="process_pool"):
    """Runs Python functions in parallel on a pool of worker processes.

    Attributes:
        max_workers: the pool size (default: the number of CPUs).
        start_method: how workers start: ``forkserver`` (default where available),
            ``spawn`` or ``fork`` (fast, but unsafe in a process with threads).
        echo: also print what the function prints to the worker's stdout and
            stderr (it is kept in the node's log files either way).
        log_limit: the most bytes kept in each log file (stdout, stderr) per attempt.
    """

    accepts: ClassVar[tuple[type, ...]] = (PythonCall,)

    max_workers: int | None = None
    start_method: StartMethod | None = None
    echo: bool = True
    log_limit: int = 10 * 1024 * 1024
    _pool: concurrent.futures.ProcessPoolExecutor | None = field(
        init=False, default=None, repr=False, eq=False
    )

    def pool(self) -> concurrent.futures.ProcessPoolExecutor:
        """The shared pool, created on first use."""
        if self._pool is None:
            context = multiprocessing.get_context(self.start_method or _default_start_method())
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.max_workers,
                mp_context=context,
                initializer=init_worker,
                initargs=([p or os.getcwd() for p in sys.path],),
            )
        return self._pool

    async def _execute(self, payload: PythonCall, task: TaskContext) -> Outcome:
        """Send the call to a worker and await its value."""
        if not isinstance(payload, PythonCall):
            raise TypeError(
                f"executor 'process_pool' cannot run a {type(payload).__name__}; it runs PythonCall"
            )
        request = detached_request(payload, task, "process_pool", "a process pool")
        request["logs"] = log_spec(task, limit=self.log_limit, echo=self.echo, detached=True)
        async with serve_steps(task, request):
            kind, value, duration = await self._call(payload, task, request)
        if kind == "suspend":
            raise Suspend(value)
        return Outcome(value=value, duration=duration)

    async def _call(
        self, payload: PythonCall, task: TaskContext, request: dict[str, Any]
    ) -> tuple[str, Any, float]:
        """Run the request on a worker: ``(kind, value, seconds)`` from :func:`call_in_worker`."""
        try:
            blob = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise TaskError(
                f"node '{task.node_id}': the arguments of '{payload.name}' cannot be sent to a "
                f"worker process ({type(exc).__name__}: {exc})",
                node_id=task.node_id,
            ) from exc
        start = time.perf_counter()
        pool = self.pool()
        try:
            kind, value = await asyncio.wrap_future(pool.submit(call_in_worker, blob))
        except BrokenProcessPool as exc:
            # A worker died (killed, out of memory, crashed): start a new pool next time.
            if self._pool is pool:
                self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
            raise TaskError(
                f"node '{task.node_id}': a process pool worker died while running "
                f"'{payload.name}' ({exc})",
                node_id=task.node_id,
            ) from exc
        return kind, value, time.perf_counter() - start

    async def aclose(self) -> None:
        """Shut the pool down, waiting for its workers to exit."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
