"""Running one task: runtime, executor choice, execution, declared outputs."""

from __future__ import annotations

import json as _json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from spindle.core.errors import TaskError
from spindle.core.model import converter
from spindle.core.store import Store
from spindle.core.workflow import canonical_json, check_inside, read_inside, run_time_escapes

if TYPE_CHECKING:
    import pluggy

    from spindle.core.plugin import Executor, Outcome, Registry, TaskContext
    from spindle.core.workflow import NodeSpec

__all__ = ["TaskRunner"]


class TaskRunner:
    """Runs task nodes for an engine; keeps one executor instance per kind (pools).

    Args:
        pm: the plugin manager (``spindle_select_executor``).
        registry: where executor kinds are created.
        store: where declared outputs are kept as artifacts.
        trusted: whether a node's ``allow_outside_paths`` is honoured: true when
            the engine has no load policy. Otherwise every output path and
            working directory must resolve inside the run directory.
    """

    def __init__(
        self, pm: pluggy.PluginManager, registry: Registry, store: Store, *, trusted: bool = True
    ) -> None:
        self.pm = pm
        self.registry = registry
        self.store = store
        self.trusted = trusted
        # One instance per distinct configuration: every node asking for
        # {kind: process_pool} shares one pool, not one pool per node. Keyed by the
        # kind (defaults) or by the canonical JSON of a node's executor options.
        self.executors: dict[str, Executor[Any]] = {}
        # A node's configured executor, by identity, to the shared instance: its key
        # (canonical JSON of its options) is computed once per definition, not per step.
        self._configured: dict[int, tuple[Executor[Any], Executor[Any]]] = {}
        self._selects: bool | None = None  # whether spindle_select_executor is implemented

    async def aclose(self) -> None:
        """Close every executor this runner created."""
        for ex in self.executors.values():
            await ex.aclose()
        self.executors.clear()
        self._configured.clear()

    async def run_task(self, task: TaskContext) -> Any:
        """Prepare the payload (runtime) and run it (executor); return the result value."""
        node = task.node
        runtime = node.runtime
        assert runtime is not None
        if task.outputs or runtime.run_paths():  # most nodes have no path to check
            self.check_paths(task)
        payload = await runtime.setup_runtime(task)
        if node.executor is not None:
            executor = self.shared(node.executor)
        else:
            # With no spindle_select_executor hook, the runtime's default kind, made once.
            found = self.executors.get(runtime.default_executor) if self._selects is False else None
            if found is None:
                found = self.executor_for(node, payload, runtime.default_executor)
            executor = found
        task.executor = executor
        if not isinstance(payload, executor.accepts):
            kinds = ", ".join(t.__name__ for t in executor.accepts)
            raise TaskError(
                f"node '{node.id}': executor '{executor.kind_name}' cannot run a "
                f"{type(payload).__name__} (it accepts {kinds}); choose another executor "
                f"for this node",
                node_id=node.id,
            )
        outcome: Outcome = await executor.execute(payload, task)
        return outcome.value

    def contained(self, node: NodeSpec) -> bool:
        """Whether ``node``'s paths must stay inside the run directory."""
        return not (node.allow_outside_paths and self.trusted)

    def check_paths(self, task: TaskContext) -> None:
        """Refuse a task whose output paths or working directory resolve outside its run dir.

        Resolved before the runtime creates output directories, so a symbolic
        link an earlier node left in the run directory is not followed.

        Raises:
            TaskError: naming each path and where it resolves to.
        """
        node = task.node
        outputs = task.outputs
        if not outputs or all(p is None for p in outputs.values()):
            runtime = node.runtime
            if runtime is None or not runtime.run_paths():
                return  # no path to check (most nodes: asked first, as it is cheapest)
        if not self.contained(node):
            return
        escapes = run_time_escapes(node, task.run_dir, task.outputs)
        if escapes:
            raise TaskError("; ".join(escapes), node_id=node.id)

    def shared(self, configured: Executor[Any]) -> Executor[Any]:
        """The engine's instance for a node's configured executor (equal options share)."""
        known = self._configured.get(id(configured))
        if known is not None and known[0] is configured:
            return known[1]
        key = "node:" + canonical_json(converter.unstructure(configured))
        shared = self.executors.setdefault(key, configured)
        self._configured[id(configured)] = (configured, shared)
        return shared

    def executor_for(self, node: NodeSpec, payload: Any, default: str) -> Executor[Any]:
        """The executor for a node that names none: the hook's choice, else ``default``."""
        kind = default
        select = self.pm.hook.spindle_select_executor
        if self._selects is None:
            # Plugins are registered when the engine opens, before any task runs.
            self._selects = bool(select.get_hookimpls())
        if self._selects:
            kind = select(node=node, payload=payload) or default
        ex = self.executors.get(kind)
        if ex is None:
            ex = self.registry.create("executor", {"kind": kind}, path=f"nodes.{node.id}.executor")
            self.executors[kind] = ex
        return ex

    async def collect_outputs(
        self, run_id: str, node: NodeSpec, task: TaskContext, value: Any
    ) -> dict[str, Any]:
        """Check and store a node's declared outputs; return what downstream nodes receive."""
        out: dict[str, Any] = {}
        contained = self.contained(node)
        for name, spec in node.outputs.items():
            path = task.outputs.get(name)
            if contained and path is not None:
                check_inside(node, name, task.run_dir, path)
            if spec.kind in ("file", "json"):
                if path is None or not path.is_file():
                    raise TaskError(
                        f"node '{node.id}' did not produce output '{name}': expected a file at "
                        f"{path}",
                        node_id=node.id,
                    )
                data = (
                    read_inside(node, name, task.run_dir, path) if contained else path.read_bytes()
                )
                await self.store.put_artifact(run_id, data, name=f"{node.id}.{name}")
                if spec.kind == "json":
                    try:
                        out[name] = _json.loads(data)
                    except ValueError as exc:
                        raise TaskError(
                            f"node '{node.id}': output '{name}' at {path} is not "
                            f"valid JSON ({exc})",
                            node_id=node.id,
                        ) from exc
                else:
                    out[name] = str(path)
            elif spec.kind == "folder":
                if path is None or not path.is_dir():
                    raise TaskError(
                        f"node '{node.id}' did not produce output '{name}': expected a folder "
                        f"at {path}",
                        node_id=node.id,
                    )
                out[name] = str(path)
            else:
                if spec.key:
                    if not isinstance(value, Mapping) or spec.key not in value:
                        raise TaskError(
                            f"node '{node.id}': output '{name}' needs key "
                            f"'{spec.key}' in the returned mapping",
                            node_id=node.id,
                        )
                    out[name] = value[spec.key]
                else:
                    out[name] = value
        return out
