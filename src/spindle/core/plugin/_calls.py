"""A task's durable calls: sub-steps and mid-function effects, whatever process it runs in.

Each sub-step or mid-function effect a task makes gets the node's next
*call index* and an idempotency key ``RUN:NODE:INDEX``. When the ledger
already holds an answer for that key the call returns it; otherwise

* ``ctx.step(fn, ...)`` / ``await ctx.astep(fn, ...)`` (and ``ctx.map``,
  ``ctx.amap``, ``ctx.gather``) run the function and commit its result before
  returning (:mod:`spindle.core.plugin._substeps`);
* ``ctx.ask_user`` / ``ctx.wait_for_event`` / ``ctx.sleep`` / ``ctx.effect``
  raise :class:`~spindle.core.plugin.Suspend`, which unwinds the task; the
  engine handles the effect and, once it is answered, calls the task again
  from the top.

:class:`DurableCalls` holds that API over five things a context provides: its
``run_id`` and ``node_id``, the node's ``recorded`` calls, the ``steps``
:class:`~spindle.core.plugin.StepLog` that commits new ones, and a call
counter. :class:`~spindle.TaskContext` provides them from the engine; an
executor that runs a task in another process provides them through a channel
to the engine (the built-in ``subprocess`` and ``process_pool`` executors do),
so the task's steps are made, retried, replayed and checked by this same code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from spindle.core.model import Effect, RetryPolicy, call_key, utcnow
from spindle.core.plugin._asubsteps import amap_steps, arun_step
from spindle.core.plugin._signals import Suspend
from spindle.core.plugin._substeps import map_steps, replayed, run_step

if TYPE_CHECKING:
    from spindle.core.model import StepRecord
    from spindle.core.plugin._steplog import StepLog

__all__ = ["DurableCalls"]

R = TypeVar("R")


class DurableCalls:
    """The sub-step and mid-function effect API of a task context (``ctx.step`` & co).

    A base class for task contexts. A subclass (an attrs class, typically)
    provides these attributes; every method here is built on them:

    Attributes:
        run_id: the run's id.
        node_id: the node's id.
        recorded: the node's recorded calls by idempotency key: where replay looks.
        steps: the :class:`~spindle.core.plugin.StepLog` that commits new sub-steps;
            None keeps them in memory only (``new_calls``), once per context.
        new_calls: sub-step values kept in memory when ``steps`` is None.

    and a private ``_call_index`` counter starting at 0. Example, the stand-in
    context of a task in another process, whose ``recorded`` and ``steps``
    forward to the engine's over a channel::

        @define
        class RemoteContext(DurableCalls):
            run_id: str
            node_id: str
            recorded: Mapping[str, StepRecord] = field(factory=dict)
            steps: StepLog | None = None
            new_calls: dict[str, Any] = field(factory=dict)
            _call_index: int = 0
    """

    __slots__ = ()

    run_id: str
    node_id: str
    recorded: Mapping[str, StepRecord]
    steps: StepLog | None
    new_calls: dict[str, Any]
    _call_index: int

    # --- call keys ------------------------------------------------------------

    def next_call_key(self) -> str:
        """Reserve the next call index of this node and return its key."""
        return self.reserve_call()[1]

    def reserve_call(self) -> tuple[int, str]:
        """Reserve the next call index of this node: ``(index, key)``."""
        index = self._call_index
        # The subclass declares the slot (an attrs field); this base has none of its own.
        self._call_index += 1  # type: ignore[misc]
        return index, call_key(self.run_id, self.node_id, index)

    # --- sub-steps ----------------------------------------------------------------

    def step(
        self,
        fn: Callable[..., R],
        *args: Any,
        name: str | None = None,
        retry: RetryPolicy | Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> R:
        """Run ``fn(*args, **kwargs)`` as a durable sub-step: committed before it returns,
        never run again once it completed; replay returns the recorded value.

        Args:
            name: the step's name in the ledger and events (default: the function's
                qualified name); replay checks it, to catch steps made out of order.
            retry: a :class:`~spindle.RetryPolicy` (or its mapping) for this step alone;
                each failed attempt is recorded, backoffs longer than the engine's
                ``max_inline_sleep`` wait on a durable timer.
            timeout: seconds an attempt may take (a sync function runs on past it,
                unrecorded: Python cannot stop a thread).

        The value must be JSON-serializable; a large one goes to the artifact store.
        From an ``async def`` task, use :meth:`astep`. To pass ``fn`` an argument
        named ``name``, ``retry`` or ``timeout``, bind it first (``functools.partial``).

        Raises:
            NondeterminismError: the ledger holds another step at this call index.
        """
        return run_step(self, fn, args, kwargs, name=name, retry=retry, timeout=timeout)  # type: ignore[no-any-return]

    def astep(
        self,
        fn: Callable[..., Awaitable[R]] | Callable[..., R],
        *args: Any,
        name: str | None = None,
        retry: RetryPolicy | Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Awaitable[R]:
        """:meth:`step` for ``async def`` tasks: ``await ctx.astep(fn, ...)``.

        ``fn`` may be async, or sync (it then runs in a worker thread). The call
        index is taken when ``astep`` is called, not when it is awaited, so steps
        started together (:meth:`gather`) keep their keys whatever finishes first.
        """
        return arun_step(self, fn, args, kwargs, name=name, retry=retry, timeout=timeout)

    # --- growing the run's graph ---------------------------------------------------

    def add_node(self, node_id: str, node: Mapping[str, Any]) -> str:
        """Add a node to this run: ``node`` is a node mapping as in a workflow file
        (``{"runtime": {...}, "inputs": {...}, "after": [...]}``).

        The addition is a durable sub-step named ``add_node`` (committed before this
        returns; replay returns it without adding again), so a resumed run rebuilds
        the same graph from its ledger. The added node runs once this node has
        completed (not if it fails); it may depend on this node, on nodes that
        ended already and on nodes added before it. From an ``async def`` task, use
        :meth:`aadd_node`. Returns ``node_id``.

        Raises:
            ValidationError: the node is invalid (its id is taken, it names a node it
                cannot depend on, its fields do not structure).
        """
        added = self.step(self._checked_node, node_id, dict(node), name="add_node")
        return str(added["id"])

    async def aadd_node(self, node_id: str, node: Mapping[str, Any]) -> str:
        """:meth:`add_node` for ``async def`` tasks: ``await ctx.aadd_node(...)``."""
        added = await self.astep(self._checked_node, node_id, dict(node), name="add_node")
        return str(added["id"])

    def _checked_node(self, node_id: str, node: dict[str, Any]) -> dict[str, Any]:
        check = getattr(self, "node_check", None)
        if check is not None:
            check(node_id, node)
        return {"id": node_id, **node}

    async def gather(self, *steps: Awaitable[Any]) -> list[Any]:
        """Await sub-steps (``ctx.astep(...)``) concurrently; their values in call order.

        Each is committed on its own as it completes. The first failure, in call
        order, is raised once every step has ended.
        """
        results = await asyncio.gather(*steps, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return list(results)

    def map(
        self,
        fn: Callable[[Any], R],
        items: Iterable[Any],
        *,
        concurrency: int = 8,
        name: str | None = None,
        retry: RetryPolicy | Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> list[R]:
        """``fn(item)`` for each item as a sub-step, ``concurrency`` at a time in threads;
        the values in item order (keys follow the items, not completion)."""
        return map_steps(
            self, fn, items, concurrency=concurrency, name=name, retry=retry, timeout=timeout
        )

    async def amap(
        self,
        fn: Callable[[Any], Awaitable[R]] | Callable[[Any], R],
        items: Iterable[Any],
        *,
        concurrency: int = 8,
        name: str | None = None,
        retry: RetryPolicy | Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> list[R]:
        """:meth:`map` for ``async def`` tasks: ``await ctx.amap(fn, items)``."""
        return await amap_steps(
            self, fn, items, concurrency=concurrency, name=name, retry=retry, timeout=timeout
        )

    # --- mid-function effects ------------------------------------------------------

    def effect(self, kind: str, **params: Any) -> Any:
        """Request an effect of ``kind``; returns its recorded value, or suspends the task."""
        key = self.next_call_key()
        rec = replayed(self, key, kind)
        if rec is not None:
            return rec.result
        raise Suspend(Effect(kind=kind, params=params, key=key))

    def ask_user(
        self, prompt: str, choices: list[str] | None = None, *, key: str | None = None
    ) -> Any:
        """Ask a person; returns their answer once it is given (``spindle resume``)."""
        params: dict[str, Any] = {"prompt": prompt}
        if choices is not None:
            params["choices"] = list(choices)
        if key is not None:
            params["key"] = key
        return self.effect("ask_user", **params)

    def wait_for_event(self, key: str, *, timeout: float | None = None) -> Any:
        """Wait for ``spindle emit KEY``; returns the event payload."""
        params: dict[str, Any] = {"key": key}
        if timeout is not None:
            params["timeout"] = timeout
        return self.effect("wait_event", **params)

    def sleep(self, until: datetime | timedelta | float) -> Any:
        """Durably sleep until an aware datetime, or for a timedelta / seconds."""
        if isinstance(until, int | float):
            until = timedelta(seconds=until)
        if isinstance(until, timedelta):
            # A re-run computes a new deadline, but then the recorded answer is
            # returned and the deadline is never used.
            until = utcnow() + until
        return self.effect("wait_until", until=until)
