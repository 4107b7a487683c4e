"""What :mod:`spindle.testing`'s plugin-author fixtures are made of.

``run_workflow`` (:class:`WorkflowRunner`, giving a :class:`WorkflowResult`)
and the context factories :func:`make_task_context` and
:func:`make_effect_context`. Kept out of :mod:`spindle.testing` itself, which
pytest imports in every session and which therefore imports only the
standard library and pytest.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from spindle.core.config import Settings
from spindle.core.engine import Engine
from spindle.core.model import RunState, RunStatus, StepKind, StepRecord, StepStatus, WaitState
from spindle.core.plugin import EffectContext, Registry, RunLinks, TaskContext
from spindle.core.store import Store
from spindle.core.workflow import NodeSpec, Workflow, load_workflow, load_workflow_text

__all__ = [
    "NoRunLinks",
    "WorkflowResult",
    "WorkflowRunner",
    "make_effect_context",
    "make_task_context",
]

#: What ``run_workflow`` accepts as a workflow.
WorkflowSource = Workflow | Mapping[str, Any] | str | os.PathLike[str] | Callable[..., Any]


class WorkflowResult:
    """A finished (or stopped) run: its state, its ledger and each node's result.

    Attributes:
        state: the run's :class:`~spindle.RunState` when the engine stopped driving it.
        records: the run's ledger, in order.
    """

    def __init__(self, state: RunState, records: list[StepRecord]) -> None:
        self.state = state
        self.records = records

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.state.run_id

    @property
    def status(self) -> RunStatus:
        """``completed``, ``failed``, ``waiting`` or ``cancelled`` (a string enum)."""
        return self.state.status

    @property
    def output(self) -> Any:
        """The run's output (the workflow's ``output`` node's result)."""
        return self.state.output

    @property
    def error(self) -> str | None:
        """Why the run failed, or None."""
        return self.state.error

    @property
    def waits(self) -> list[WaitState]:
        """What a waiting run waits for."""
        return self.state.waits

    @property
    def outputs(self) -> dict[str, Any]:
        """Each completed node's result by node id (the last completed record of each)."""
        return {
            r.node_id: r.result
            for r in self.records
            if r.kind == StepKind.NODE and r.status == StepStatus.COMPLETED
        }

    def __getitem__(self, node_id: str) -> Any:
        """The result of node ``node_id``; ``KeyError`` names the nodes that completed."""
        outputs = self.outputs
        if node_id not in outputs:
            done = ", ".join(sorted(outputs)) or "none"
            raise KeyError(
                f"node {node_id!r} has no completed result in run {self.run_id} "
                f"(status {self.status.value}; completed nodes: {done})"
            )
        return outputs[node_id]

    def __repr__(self) -> str:
        return f"<WorkflowResult {self.run_id} {self.status.value} output={self.output!r}>"


def _workflow(source: WorkflowSource, inputs: Mapping[str, Any], registry: Registry) -> Workflow:
    """Build the workflow ``source`` names, against ``registry``."""
    if isinstance(source, Workflow):
        return source
    if isinstance(source, Mapping):
        return Workflow.from_dict(source, registry=registry)
    if isinstance(source, os.PathLike) or (
        isinstance(source, str)
        and "\n" not in source
        and source.endswith((".yaml", ".yml", ".json"))
    ):
        return load_workflow(source, registry=registry)
    if isinstance(source, str):
        return load_workflow_text(source, registry=registry)
    if callable(source) and inspect.isfunction(source):
        # One function is a one-node workflow whose inputs are the given ones.
        workflow = Workflow(source.__name__, inputs=dict(inputs), registry=registry)
        workflow.node(source)
        workflow.output = source.__name__
        return workflow
    raise TypeError(
        f"run_workflow cannot run {source!r}: give a Workflow, a definition dict, YAML or "
        f"JSON text, the path of a workflow file, or a Python function"
    )


class WorkflowRunner:
    """The ``run_workflow`` fixture: runs a workflow on a test registry and store.

    Call it (``run_workflow(workflow, inputs, plugins=[MyRuntime])``) in a sync
    test, or await :meth:`arun` in an ``async def`` one. Each call opens an
    engine, runs the workflow until it completes, fails or waits, reads the
    ledger, and closes the engine.

    Args:
        runs_dir: where the runs' working directories go (the test's ``tmp_path``).
    """

    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = runs_dir

    def __call__(
        self,
        workflow: WorkflowSource,
        inputs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> WorkflowResult:
        """Run ``workflow`` with ``inputs``; the options are those of :meth:`arun`."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.arun(workflow, inputs, **options))
        raise RuntimeError(
            "run_workflow(...) was called inside a running event loop; "
            "in an async test use 'await run_workflow.arun(...)'"
        )

    async def arun(
        self,
        workflow: WorkflowSource,
        inputs: Mapping[str, Any] | None = None,
        *,
        plugins: Iterable[Any] = (),
        store: str | Store = "memory://",
        registry: Registry | None = None,
        settings: Settings | None = None,
        hooks: Iterable[Any] = (),
        observers: Iterable[Any] = (),
        middleware: Iterable[Any] = (),
    ) -> WorkflowResult:
        """Run ``workflow`` and return its :class:`WorkflowResult`.

        Args:
            workflow: a :class:`~spindle.Workflow`, a definition dict, YAML or
                JSON text, a workflow file's path, or a Python function (a
                one-node workflow taking ``inputs`` by parameter name).
            inputs: the run's inputs.
            plugins: kinds to register (your runtime, executor, effect, ...).
            store: the store URL (default ``memory://``) or an unopened store.
            registry: the registry to use instead of
                ``Registry.for_testing(plugins)`` (spindle's kinds and
                ``plugins``, no other installed package's, no installed hooks).
            settings: engine settings (default: runs under the test's tmp dir).
            hooks: hook modules or objects to load (``Engine(hooks=...)``).
            observers: observers (``Engine(observers=...)``).
            middleware: middleware instances (``Engine(middleware=...)``).
        """
        plugins = list(plugins)
        if registry is None:
            registry = Registry.for_testing(plugins)
        else:
            for plugin in plugins:
                registry.register(plugin)
        built = _workflow(workflow, inputs or {}, registry)
        engine = Engine(
            store,
            settings=settings or Settings(runs_dir=str(self.runs_dir)),
            registry=registry,
            hooks=hooks,
            observers=observers,
            middleware=middleware,
        )
        async with engine:
            state = await engine.run(built, dict(inputs or {}))
            records = await engine.ledger(state.run_id)
        return WorkflowResult(state, records)


class NoRunLinks:
    """The ``runs`` of an effect context built without an engine: starting runs fails.

    Pass your own :class:`~spindle.core.plugin.RunLinks` to
    :func:`make_effect_context` to test a handler that starts other runs.
    """

    def _refuse(self, what: str) -> RuntimeError:
        return RuntimeError(
            f"ctx.runs.{what} needs an engine: this EffectContext was made by "
            f"make_effect_context() without runs=; pass runs= an object with resolve, "
            f"run_child and hand_off, or test the handler through run_workflow"
        )

    def resolve(self, target: str) -> Workflow:
        """Refuse: there is no engine to find workflows in."""
        raise self._refuse("resolve")

    async def run_child(self, workflow: Workflow, inputs: Mapping[str, Any]) -> RunState:
        """Refuse: there is no engine to start a child run."""
        raise self._refuse("run_child")

    async def hand_off(self, target: str, payload: Any = None) -> str:
        """Refuse: there is no engine to start a follow-on run."""
        raise self._refuse("hand_off")


def make_task_context(
    runtime: Any = None,
    *,
    node_id: str = "task",
    inputs: Mapping[str, Any] | None = None,
    outputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
    run_dir: str | os.PathLike[str],
    run_id: str = "run-test",
    workflow_inputs: Mapping[str, Any] | None = None,
    attempt: int = 1,
    executor: Any = None,
    node: NodeSpec | None = None,
    secret_values: Iterable[str] = (),
) -> TaskContext:
    """A real :class:`~spindle.TaskContext` for one node, without an engine.

    For unit tests of a runtime's ``_setup_runtime(task)`` and an executor's
    ``_execute(payload, task)``. Sub-steps (``ctx.step``) are kept in memory.

    Args:
        runtime: the runtime instance the node uses (also the node's ``runtime``).
        node_id: the node's id.
        inputs: the node's resolved inputs by parameter name.
        outputs: declared outputs by name, as paths (relative ones are taken
            from ``run_dir``) or None.
        run_dir: the run's working directory (``tmp_path``).
        run_id: the run's id.
        workflow_inputs: the run's inputs.
        attempt: the attempt number (1 for the first try).
        executor: the executor instance, if the code under test reads it.
        node: the node's definition (default: a node of ``runtime``/``executor``).
        secret_values: clear values that :meth:`TaskContext.redact` hides.

    Example::

        task = make_task_context(UpperRuntime(), inputs={"text": "hi"}, run_dir=tmp_path)
        payload = asyncio.run(UpperRuntime().setup_runtime(task))
    """
    base = Path(run_dir)
    paths = {
        name: None if path is None else base / Path(path) for name, path in (outputs or {}).items()
    }
    return TaskContext(
        run_id=run_id,
        node_id=node_id,
        node=node or NodeSpec(id=node_id, runtime=runtime, executor=executor),
        inputs=dict(inputs or {}),
        outputs=paths,
        run_dir=base,
        workflow_inputs=dict(workflow_inputs or {}),
        attempt=attempt,
        runtime=runtime,
        executor=executor,
        secret_values=tuple(secret_values),
    )


def make_effect_context(
    *,
    run_dir: str | os.PathLike[str],
    node_id: str = "effect",
    inputs: Mapping[str, Any] | None = None,
    wait_key: str | None = None,
    call_key: str | None = None,
    store: Store | None = None,
    registry: Registry | None = None,
    node: NodeSpec | None = None,
    workflow: Workflow | None = None,
    runs: RunLinks | None = None,
    now: datetime | None = None,
) -> EffectContext:
    """A real :class:`~spindle.EffectContext`, without an engine, for ``handle()`` tests.

    Args:
        run_dir: the run's working directory (``tmp_path``).
        node_id: the requesting node's id.
        inputs: the node's resolved inputs.
        wait_key: the key a wait made now should use (default: ``node_id``).
        call_key: set it to test a request made mid-function (``ctx.effect``).
        store: the run's store (default: a new ``memory://`` store).
        registry: the registry (default: ``Registry.for_testing()``).
        node: the requesting node's definition, if the handler reads it.
        workflow: the run's workflow, if the handler reads it (``base_dir``).
        runs: how the handler starts other runs (default: :class:`NoRunLinks`,
            which refuses with a message saying what to pass).
        now: the engine's "now" (default: the current time, UTC).

    Example::

        ctx = make_effect_context(run_dir=tmp_path)
        outcome = asyncio.run(ApprovalHandler(prompt="ok?").handle(run, effect, ctx))
    """
    registry = registry or Registry.for_testing()
    if store is None:
        store = registry.get("store", "memory").from_url("memory://")
    context = EffectContext(
        runs=runs if runs is not None else NoRunLinks(),
        store=store,
        registry=registry,
        node_id=node_id,
        node=node,
        workflow=workflow,
        run_dir=Path(run_dir),
        wait_key=wait_key or node_id,
        call_key=call_key,
        inputs=dict(inputs or {}),
    )
    if now is not None:
        context.now = now
    return context
