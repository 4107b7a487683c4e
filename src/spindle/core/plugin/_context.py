"""What a task sees: the task context (``task`` / ``ctx``) and the effect context.

A task context's sub-steps and mid-function effects (``ctx.step``,
``ctx.ask_user``, ...) come from :class:`~spindle.core.plugin.DurableCalls`
(:mod:`spindle.core.plugin._calls`), which it shares with the stand-in
contexts of tasks run in other processes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from attrs import define, field

from spindle.core.model import StepRecord, node_key, utcnow
from spindle.core.plugin._calls import DurableCalls
from spindle.core.plugin._middleware import EMPTY_CHAINS, MiddlewareChains
from spindle.core.plugin._steplog import StepLog

if TYPE_CHECKING:
    from spindle.core.model import RunState
    from spindle.core.plugin._bases import Executor, Runtime
    from spindle.core.plugin._registry import Registry
    from spindle.core.store import Store
    from spindle.core.workflow import NodeSpec, Workflow

__all__ = ["EffectContext", "RunLinks", "TaskContext"]


@define(eq=False)
class TaskContext(DurableCalls):
    """Everything a runtime, an executor and a Python task receive about one node.

    A Python task's sub-steps (``ctx.step``, ``ctx.map``, ...) and mid-function
    effects (``ctx.ask_user``, ...) are the methods of
    :class:`~spindle.core.plugin.DurableCalls`.

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
        recorded: the node's recorded calls by idempotency key (the engine's live view
            of the ledger).
        steps: where sub-steps are committed (the engine's; None in a context built
            by hand, where sub-steps are only kept in memory).
        node_check: checks a node :meth:`add_node` adds, raising ``ValidationError``
            (the engine's; None: only the engine's own check when the node is taken up).
        env_source: gives the environment observers contribute to the node's process
            as ``env_source(run_id, node_id)`` (the engine's; see :meth:`environment`).
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
    node_check: Callable[[str, Mapping[str, Any]], None] | None = None
    env_source: Callable[[str, str], Mapping[str, str]] | None = None
    _call_index: int = 0

    _dir_ready: bool = field(default=False, init=False)

    @property
    def run_dir(self) -> Path:
        """The run's working directory (created on first access)."""
        if not self._dir_ready:
            self._run_dir.mkdir(parents=True, exist_ok=True)
            self._dir_ready = True
        return self._run_dir

    def environment(self) -> dict[str, str]:
        """Variables the engine's observers give this node's process, such as the W3C
        ``TRACEPARENT`` of the node's span from the ``otel`` observer.

        Executors that start another process (``subprocess``, ``process_pool``,
        ``dask``) put them in its environment, so code there joins the run's trace
        without spindle's core knowing what a trace is. Asked anew at each call:
        the node's span is the one open now.
        """
        if self.env_source is None:
            return {}
        return dict(self.env_source(self.run_id, self.node_id))

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
