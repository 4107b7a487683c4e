"""What a task sees: the task context (``task`` / ``ctx``) and the effect context.

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
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from attrs import define, field

from spindle.core.model import Effect, RetryPolicy, StepRecord, call_key, node_key, utcnow
from spindle.core.plugin._asubsteps import amap_steps, arun_step
from spindle.core.plugin._middleware import EMPTY_CHAINS, MiddlewareChains
from spindle.core.plugin._signals import Suspend
from spindle.core.plugin._substeps import StepLog, map_steps, replayed, run_step

if TYPE_CHECKING:
    from spindle.core.model import RunState
    from spindle.core.plugin._bases import Executor, Runtime
    from spindle.core.plugin._registry import Registry
    from spindle.core.store import Store
    from spindle.core.workflow import NodeSpec, Workflow

__all__ = ["EffectContext", "RunLinks", "TaskContext"]

R = TypeVar("R")


@define(eq=False)
class TaskContext:
    """Everything a runtime, an executor and a Python task receive about one node.

    Attributes:
        run_id: the run's id.
        node_id: the node's id (``{task.name}`` in command templates).
        node: the node's definition.
        inputs: the node's resolved inputs by parameter name.
        outputs: declared outputs by name, as absolute paths (file/folder/json) or None.
        run_dir: the run's working directory; relative paths resolve here. It is
            created on first access, so tasks that never touch it cost no mkdir.
        workflow_inputs: the run's inputs (secrets redacted only in records, not here).
        attempt: 1 for the first try, then 2, 3... on retries.
        idempotency_key: ``RUN:NODE`` — stable across retries and re-runs, for
            making a task's own side effects idempotent.
        secret_values: the clear values of the run's secret inputs, so executors that
            write output to disk can redact them (:meth:`redact`).
        steps: where sub-steps are committed (the engine's; None in a context built
            by hand, where sub-steps are only kept in memory).
    """

    run_id: str
    node_id: str
    node: NodeSpec
    inputs: dict[str, Any]
    outputs: dict[str, Path | None]
    _run_dir: Path = field(alias="run_dir")
    workflow_inputs: Mapping[str, Any] = field(factory=dict)
    attempt: int = 1
    runtime: Runtime[Any] | None = None
    executor: Executor[Any] | None = None
    middleware: MiddlewareChains = EMPTY_CHAINS
    workflow: Workflow | None = None
    recorded: Mapping[str, StepRecord] = field(factory=dict)
    new_calls: dict[str, Any] = field(factory=dict)
    secret_values: tuple[str, ...] = ()
    steps: StepLog | None = None
    _call_index: int = 0

    _dir_ready: bool = field(default=False, init=False)

    @property
    def run_dir(self) -> Path:
        """The run's working directory (created on first access)."""
        if not self._dir_ready:
            self._run_dir.mkdir(parents=True, exist_ok=True)
            self._dir_ready = True
        return self._run_dir

    def redact(self, text: str) -> str:
        """``text`` with every secret input value replaced by ``***``."""
        for value in self.secret_values:
            if value:
                text = text.replace(value, "***")
        return text

    @property
    def idempotency_key(self) -> str:
        """``RUN:NODE``: the same on every attempt of this node in this run."""
        return node_key(self.run_id, self.node_id)

    @property
    def name(self) -> str:
        """The node id (``{task.name}``)."""
        return self.node_id

    # --- call keys ------------------------------------------------------------

    def next_call_key(self) -> str:
        """Reserve the next call index of this node and return its key."""
        return self.reserve_call()[1]

    def reserve_call(self) -> tuple[int, str]:
        """Reserve the next call index of this node: ``(index, key)``."""
        index = self._call_index
        self._call_index += 1
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


@runtime_checkable
class RunLinks(Protocol):
    """What an effect handler may do with other runs: ``ctx.runs`` of its :class:`EffectContext`.

    The engine implements it for the node that made the request. Runs started
    here are linked to that request: their ids derive from it, so a node that
    runs again after a crash finds the run it started instead of starting a
    second one.
    """

    def resolve(self, target: str) -> Workflow:
        """The workflow ``target`` names: one the engine knows by name, or a file
        (a relative path is taken from the requesting workflow's directory).

        Raises:
            ValidationError: the file is not a valid workflow (or is refused by the
                engine's load policy).
        """
        ...

    async def run_child(self, workflow: Workflow, inputs: Mapping[str, Any]) -> RunState:
        """Start the sub-workflow run of this request (or find it) and drive it.

        The child's end answers the requesting node's wait; nothing else can.
        Returns the child's state once it stopped: completed, failed,
        cancelled, or waiting (then the node waits on it too).
        """
        ...

    async def hand_off(self, target: str, payload: Any = None) -> str:
        """Hand ``payload`` to a follow-on run of ``target``, start and drive it.

        The envelope is kept in the store and acknowledged by the follow-on run;
        ``handoff_created`` is emitted with the requesting node's commit.
        Returns the follow-on run's id.
        """
        ...


@define(eq=False)
class EffectContext:
    """What an effect handler receives besides the run and the effect.

    ``runs`` starts and links other runs (sub-workflows, handoffs), ``store``
    is the run's store, ``node`` the requesting node's definition and
    ``workflow`` the run's workflow (``base_dir`` resolves relative file
    paths). ``wait_key`` is the key a wait created now should use unless the
    effect names its own; ``call_key`` is set when a task asked
    mid-function; ``inputs`` are the node's resolved inputs.
    """

    runs: RunLinks
    store: Store
    registry: Registry
    node_id: str
    node: NodeSpec | None
    workflow: Workflow | None
    run_dir: Path
    wait_key: str
    call_key: str | None = None
    inputs: dict[str, Any] = field(factory=dict)
    now: datetime = field(factory=utcnow)

    def resolve_path(self, path: str) -> Path:
        """Resolve ``path`` against the workflow file's directory (or the cwd)."""
        p = Path(path)
        if p.is_absolute():
            return p
        base = self.workflow.base_dir if self.workflow and self.workflow.base_dir else Path.cwd()
        return base / p
