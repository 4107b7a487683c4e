"""The workflow model: nodes, references between them, validation, content hashes.

A :class:`Workflow` is built from a file (:func:`~spindle.core.workflow.load_workflow`) or in
Python (``Workflow(...)`` with ``@wf.node``); both produce the same model and
the same serialized definition (:meth:`Workflow.to_dict`).

References in a node's ``inputs`` mapping are strings: ``inputs.NAME`` (a
workflow input), ``NODE`` (that node's result) or ``NODE.OUTPUT`` (one of its
declared outputs). A literal value is written ``{value: ...}``. Every
reference to a node is also a dependency.

The class holds the model and caches what is derived from it; the work is
done beside it: checks and ordering in ``_analysis``, turning plain data
into a workflow and back in ``_definition``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from spindle.core.errors import PolicyViolation, ValidationError
from spindle.core.model import RetryPolicy
from spindle.core.plugin import EffectHandler, Executor, Runtime
from spindle.core.workflow._analysis import dependency_order, structural_problems
from spindle.core.workflow._builders import branch_node, loop_node, map_node, subworkflow_node
from spindle.core.workflow._definition import (
    STRUCTURALLY_VALID,
    _definition_json,
    _input_dict,
    _node,
    _node_dict,
    _sha256,
    _workflow_from_dict,
)
from spindle.core.workflow._nodes import (
    InputSpec,
    LoadPolicy,
    NodeSpec,
    _base_dir_context,
    canonical_json,
)
from spindle.core.workflow._paths import policy_path_problems

if TYPE_CHECKING:
    from spindle.core.plugin import Registry
    from spindle.core.workflow._cache_spec import CacheSpec
    from spindle.core.workflow._queue_field import QueueSpec
    from spindle.core.workflow._schedule import ScheduleSpec

__all__ = ["Workflow"]

F = TypeVar("F", bound=Callable[..., Any])
_D = TypeVar("_D")


class Workflow:
    """A named graph of nodes, built in Python or loaded from a file.

    Example::

        wf = Workflow("greet", inputs={"who": "world"})

        @wf.node
        def hello(who: str) -> str:
            return f"hello {who}"

        @wf.node
        def shout(hello: str) -> str:  # depends on node "hello" by parameter name
            return hello.upper()

        wf.output = "shout"
    """

    def __init__(
        self,
        name: str,
        *,
        inputs: Mapping[str, Any] | None = None,
        output: str | dict[str, str] | None = None,
        base_dir: str | Path | None = None,
        source: str | None = None,
        max_steps: int | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.name = name
        self.inputs: dict[str, InputSpec] = {
            k: v if isinstance(v, InputSpec) else InputSpec(default=v)
            for k, v in (inputs or {}).items()
        }
        self.nodes: dict[str, NodeSpec] = {}
        self.output = dict(output) if isinstance(output, Mapping) else output
        self.base_dir = Path(base_dir) if base_dir is not None else None
        self.source = source
        self.max_steps = max_steps
        #: The queue runs started detached wait on (the file's ``queue:``), or None.
        self.queue: QueueSpec | None = None
        #: When to start it (a file's ``schedule:``); not part of the definition.
        self.schedule: ScheduleSpec | None = None
        #: The ``cache:`` default of every task node (the file's top-level ``cache:``).
        self.cache: CacheSpec | None = None
        self._registry = registry
        self._cache: dict[Any, Any] = {}

    def __setattr__(self, name: str, value: Any) -> None:
        # Derived data (definition, hashes, validation) is cached; changing a public
        # attribute drops it. Nodes must not be edited in place once a run started.
        if not name.startswith("_"):
            self.__dict__["_cache"] = {}
        super().__setattr__(name, value)

    # --- building ------------------------------------------------------------

    @property
    def registry(self) -> Registry:
        """The registry kinds are resolved against (the default one unless given)."""
        if self._registry is None:
            from spindle.core.plugin import default_registry

            self._registry = default_registry()
        return self._registry

    def add(self, node: NodeSpec) -> NodeSpec:
        """Add a node; its id must be new."""
        self._cache.clear()
        if node.id in self.nodes:
            raise ValidationError(f"workflow '{self.name}' already has a node '{node.id}'")
        self.nodes[node.id] = node
        return node

    def task(
        self,
        node_id: str,
        runtime: Runtime[Any] | Mapping[str, Any],
        *,
        executor: Executor[Any] | Mapping[str, Any] | None = None,
        **options: Any,
    ) -> NodeSpec:
        """Add a task node from a runtime (instance or ``{"kind": ..., ...}`` mapping)."""
        with _base_dir_context(self.base_dir):
            rt = (
                runtime
                if isinstance(runtime, Runtime)
                else self.registry.create("runtime", runtime, path=f"nodes.{node_id}.runtime")
            )
        ex = (
            executor
            if executor is None or isinstance(executor, Executor)
            else (self.registry.create("executor", executor, path=f"nodes.{node_id}.executor"))
        )
        return self.add(_node(node_id, runtime=rt, executor=ex, **options))

    def effect(
        self, node_id: str, effect: EffectHandler | Mapping[str, Any], **options: Any
    ) -> NodeSpec:
        """Add an effect node (``{"kind": "ask_user", "prompt": ...}`` or a handler instance)."""
        eff = (
            effect
            if isinstance(effect, EffectHandler)
            else self.registry.create("effect", effect, path=f"nodes.{node_id}.effect")
        )
        return self.add(_node(node_id, effect=eff, **options))

    def node(
        self,
        fn: F | None = None,
        *,
        name: str | None = None,
        after: Iterable[str] = (),
        inputs: Mapping[str, Any] | None = None,
        outputs: Mapping[str, Any] | None = None,
        executor: Executor[Any] | Mapping[str, Any] | None = None,
        retry: RetryPolicy | Mapping[str, Any] | None = None,
        timeout: float | None = None,
        continue_on_failure: bool = False,
        allow_outside_paths: bool = False,
        when: Mapping[str, Any] | Callable[..., Any] | None = None,
        join: str = "all",
        resources: Mapping[str, Any] | None = None,
        cache: bool | Mapping[str, Any] | CacheSpec | None = None,
    ) -> Any:
        """Decorator: add a Python callable as a node (runtime ``python``).

        A parameter named like an earlier node receives that node's result (and
        makes it a dependency) unless ``inputs`` maps it explicitly. The other
        options are the node's fields (``allow_outside_paths``: its output
        paths may leave the run directory; refused under a load policy; ``when``:
        a condition mapping or a predicate taking upstream results and inputs by
        parameter name, false skips the node; ``join``: ``all`` or ``any``; ``resources``:
        what an attempt needs, ``{"cpu": 2, "memory": "4GiB"}``; ``cache``: reuse a
        completed result, ``True`` or ``{"key", "ttl", "files"}``, see docs/caching.md).
        """

        def decorate(func: F) -> F:
            node_id = name or func.__name__
            mapping = dict(inputs or {})
            for pname in inspect.signature(func).parameters:
                if pname not in mapping and pname in self.nodes:
                    mapping[pname] = pname
                elif pname not in mapping and pname in self.inputs:
                    mapping[pname] = f"inputs.{pname}"
            self.task(
                node_id,
                {"kind": "python", "function": func},
                executor=executor,
                inputs=mapping,
                outputs=dict(outputs or {}),
                after=list(after),
                retry=retry,
                timeout=timeout,
                continue_on_failure=continue_on_failure,
                allow_outside_paths=allow_outside_paths,
                when=dict(when) if isinstance(when, Mapping) else when,
                join=join,
                **({"resources": dict(resources)} if resources else {}),
                **({"cache": cache} if cache is not None else {}),
            )
            return func

        if fn is not None:
            return decorate(fn)
        return decorate

    def branch(self, node_id: str, on: str, cases: Mapping[Any, Any], **options: Any) -> NodeSpec:
        """Add a branch node: ``on``'s value picks the case whose nodes are live; the
        other cases' nodes are skipped (``default=``: the nodes when no case matches)."""
        return self.add(branch_node(self, node_id, on, cases, **options))

    def map(
        self, node_id: str, over: str | int, node: Mapping[str, Any], **options: Any
    ) -> NodeSpec:
        """Add a map node: ``node`` (a node mapping, as in a file) runs once per item of
        ``over`` (``NODE``, ``NODE.OUTPUT``, ``inputs.NAME``, or an int: a range); its
        result is the list of the items' results (``concurrency=``, ``max_failures=``)."""
        return self.add(map_node(self, node_id, over, node, **options))

    def loop(self, node_id: str, body: list[Mapping[str, Any]], **options: Any) -> NodeSpec:
        """Add a loop node: ``body`` (node mappings, each with an ``id``) runs as iteration
        ``NAME#k`` until ``until=`` (a condition) holds or ``max_iterations=`` is reached."""
        return self.add(loop_node(self, node_id, body, **options))

    def subworkflow(self, node_id: str, workflow: str, **options: Any) -> NodeSpec:
        """Add a node that runs ``workflow`` (a file or a known name) as a child run: its
        ``inputs=`` become the child's inputs; ``output=`` (a reference into the child, or
        a mapping of name to one) picks the result; ``max_depth=`` bounds the run chain."""
        return self.add(subworkflow_node(self, node_id, workflow, **options))

    # --- analysis ------------------------------------------------------------

    def derived(self, key: str, build: Callable[[], _D]) -> _D:
        """``build()``, computed once until the workflow changes (adding a node or setting
        an attribute drops it): what every run of this workflow derives alike, such as
        the engine's view of its graph. Do not mutate what it returns."""
        cache_key = ("derived", key)
        try:
            return self._cache[cache_key]  # type: ignore[no-any-return]
        except KeyError:
            value = self._cache[cache_key] = build()
            return value

    def dependencies(self, node_id: str) -> list[str]:
        """The nodes ``node_id`` waits for: node references plus ``after`` (cached)."""
        cache = self._cache.setdefault("deps", {})
        found = cache.get(node_id)
        if found is None:
            found = cache[node_id] = self._dependencies(node_id)
        return list(found)

    def _dependencies(self, node_id: str) -> list[str]:
        node = self.nodes[node_id]
        # A dict keeps the order and drops repeats in one pass (a join after 10,000
        # nodes would otherwise scan its list once per entry).
        deps = dict.fromkeys(r.target for r in node.references() if not r.is_workflow_input)
        deps.update(dict.fromkeys(node.after))
        deps.update(dict.fromkeys(self._branch_parents().get(node_id, ())))
        return list(deps)

    def _branch_parents(self) -> dict[str, list[str]]:
        """The branch nodes that list each node (a listed node runs after its branch)."""
        found = self._cache.get("branch-parents")
        if found is None:
            found = self._cache["branch-parents"] = {}
            for nid, node in self.nodes.items():
                if node.branch is not None:
                    for listed in node.branch.listed():
                        found.setdefault(listed, []).append(nid)
        return found

    def problems(self) -> list[str]:
        """Every structural problem (references, cycles, plugin checks), one line each."""
        return structural_problems(self, {})

    def validate(self, policy: LoadPolicy | None = None) -> Workflow:
        """Raise :class:`ValidationError` listing every problem (or ``PolicyViolation``).

        A successful validation is remembered (per policy) until the workflow changes.
        """
        key = ("valid", id(policy))
        if key in self._cache:
            return self
        # The policy comes first: checking a definition imports the functions it
        # names, and a module the policy refuses must never be imported.
        if policy is not None:
            refused = [p for n in self.nodes.values() for p in policy.problems(n)]
            refused += [p for n in self.nodes.values() for p in policy_path_problems(n)]
            if refused:
                raise PolicyViolation(
                    f"workflow '{self.name}' is refused by the load policy", refused
                )
        problems = [] if self._cache.get(STRUCTURALLY_VALID) else self.problems()
        if problems:
            raise ValidationError(f"workflow '{self.name}' is invalid", problems)
        self._cache[key] = policy  # keeps the policy alive so its id is not reused
        return self

    def order(self) -> list[str]:
        """Node ids in a dependency-respecting order (definition order among peers)."""
        cached = self._cache.get("order")
        if cached is None:
            cached = self._cache["order"] = dependency_order(self)
        return list(cached)

    # --- serialization -------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The definition as plain data (the file format), with a content hash per node.

        This is what a store keeps with each run, so a secret input's default is
        left out (written as no default): the stored definition, and the
        definition id hashed from it, never hold a secret. A run resumed in
        another process is given its secrets again (``--input NAME=VALUE``).
        Computed once and cached until the workflow changes; do not mutate the result.
        """
        cached = self._cache.get("dict")
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        nodes = {nid: _node_dict(n) for nid, n in self.nodes.items()}
        # each node serialized once: for its hash here, and within the definition id
        self._cache["node_json"] = node_json = {nid: canonical_json(d) for nid, d in nodes.items()}
        self._cache["dict"] = data = {
            "name": self.name,
            "inputs": {k: _input_dict(v) for k, v in self.inputs.items()},
            "nodes": nodes,
            "output": self.output,
            "max_steps": self.max_steps,
            "base_dir": str(self.base_dir) if self.base_dir is not None else None,
            "source": self.source,
            "node_hashes": {nid: _sha256(text) for nid, text in node_json.items()},
        }
        if self.queue is not None:  # only then: other definitions keep their ids
            data["queue"] = self.queue.to_dict()
        if self.cache is not None:  # likewise
            data["cache"] = self.cache.to_dict()
        return data

    def node_hashes(self) -> dict[str, str]:
        """A content hash per node: what changed between two definitions."""
        return dict(self.to_dict()["node_hashes"])

    def definition_id(self) -> str:
        """A content id for the whole definition."""
        cached = self._cache.get("id")
        if cached is None:
            d = self.to_dict()
            definition = {k: v for k, v in d.items() if k not in ("source", "base_dir")}
            cached = _sha256(_definition_json(definition, self._cache["node_json"]))[:32]
            self._cache["id"] = cached
        return str(cached)

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        registry: Registry | None = None,
        source: str | None = None,
        base_dir: str | Path | None = None,
        policy: LoadPolicy | None = None,
    ) -> Workflow:
        """Build (and validate) a workflow from plain data; every problem is reported at once.

        Args:
            data: the definition, as in a workflow file (or :meth:`to_dict`).
            registry: where plugin kinds are looked up (the default registry if None).
            source: where the definition came from (a file name), kept for messages.
            base_dir: the directory relative references resolve against; plugins
                see it as :func:`current_base_dir` while their config is structured.
            policy: refuses nodes before anything they name is imported (as
                :meth:`validate` does for a workflow built in Python).

        Raises:
            PolicyViolation: ``policy`` refuses a node.
            ValidationError: with one ``"message @ dotted.path"`` line per problem.
        """
        return _workflow_from_dict(
            cls, data, registry=registry, source=source, base_dir=base_dir, policy=policy
        )
