"""The workflow model: nodes, references between them, validation, content hashes.

A :class:`Workflow` is built from a file (:func:`~spindle.core.workflow.load_workflow`) or in
Python (``Workflow(...)`` with ``@wf.node``); both produce the same model and
the same serialized definition (:meth:`Workflow.to_dict`).

References in a node's ``inputs`` mapping are strings: ``inputs.NAME`` (a
workflow input), ``NODE`` (that node's result) or ``NODE.OUTPUT`` (one of its
declared outputs). A literal value is written ``{value: ...}``. Every
reference to a node is also a dependency.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from spindle.core.errors import PolicyViolation, ValidationError
from spindle.core.model import converter
from spindle.core.plugin import EffectHandler, Executor, Runtime, using_registry
from spindle.core.workflow._definition import (
    _WORKFLOW_FIELDS,
    _hash,
    _node,
    _node_dict,
    _str_or_none,
    _structure_inputs,
    _structure_node,
)
from spindle.core.workflow._nodes import (
    InputSpec,
    LoadPolicy,
    NodeSpec,
    Reference,
    RetryPolicy,
    _base_dir_context,
)

if TYPE_CHECKING:
    from spindle.core.plugin import Registry

__all__ = ["Workflow"]

F = TypeVar("F", bound=Callable[..., Any])


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
        output: str | None = None,
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
        self.output = output
        self.base_dir = Path(base_dir) if base_dir is not None else None
        self.source = source
        self.max_steps = max_steps
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
    ) -> Any:
        """Decorator: add a Python callable as a node (runtime ``python``).

        A parameter named like an earlier node receives that node's result (and
        makes it a dependency) unless ``inputs`` maps it explicitly.
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
            )
            return func

        if fn is not None:
            return decorate(fn)
        return decorate

    # --- analysis ------------------------------------------------------------

    def dependencies(self, node_id: str) -> list[str]:
        """The nodes ``node_id`` waits for: node references plus ``after`` (cached)."""
        cache = self._cache.setdefault("deps", {})
        found = cache.get(node_id)
        if found is None:
            found = cache[node_id] = self._dependencies(node_id)
        return list(found)

    def _dependencies(self, node_id: str) -> list[str]:
        node = self.nodes[node_id]
        deps = [r.target for r in node.references() if not r.is_workflow_input]
        for a in node.after:
            if a not in deps:
                deps.append(a)
        return deps

    def problems(self) -> list[str]:
        """Every structural problem (references, cycles, plugin checks), one line each."""
        return self._problems({})

    def _problems(self, broken: Mapping[str, set[str]]) -> list[str]:
        """:meth:`problems`, skipping checks that a field which failed to load would skew.

        ``broken`` maps a node id to the fields that could not be structured
        (``"*"``: the whole node), so a bad ``outputs`` mapping is reported
        once, not again as every reference to those outputs.
        """
        out: list[str] = []
        if not self.nodes:
            out.append(f"workflow '{self.name}' has no nodes @ nodes")
        for nid, node in self.nodes.items():
            where = f"nodes.{nid}"
            failed = broken.get(nid, set())
            if "." in nid or nid in ("", "inputs"):
                out.append(
                    f"node id '{nid}' is not allowed: it cannot be empty, contain '.' "
                    f"(references are written NODE.OUTPUT) or be 'inputs' @ {where}"
                )
            if "*" in failed:
                continue
            if (node.runtime is None) == (node.effect is None) and not (
                failed & {"runtime", "effect"}
            ):
                out.append(f"node '{nid}' needs exactly one of 'runtime' or 'effect' @ {where}")
            if node.executor is not None and node.runtime is None and "runtime" not in failed:
                out.append(f"node '{nid}': 'executor' needs a 'runtime' @ {where}.executor")
            for ref in node.references():
                out.extend(self._reference_problems(nid, ref, broken))
            for i, a in enumerate(node.after):
                if a not in self.nodes:
                    out.append(f"node '{nid}' runs after unknown node '{a}' @ {where}.after.{i}")
            if node.retry is not None and node.retry.max_attempts < 1:
                out.append(
                    f"node '{nid}': retry.max_attempts must be at least 1 "
                    f"@ {where}.retry.max_attempts"
                )
            if node.timeout is not None and node.timeout <= 0:
                out.append(f"node '{nid}': timeout must be positive @ {where}.timeout")
            for oname, spec in node.outputs.items():
                if spec.kind in ("file", "folder", "json") and not spec.path:
                    out.append(
                        f"node '{nid}': output '{oname}' of kind '{spec.kind}' needs a "
                        f"'path' @ {where}.outputs.{oname}.path"
                    )
            if failed & {"inputs", "outputs"}:
                continue  # plugin checks would miss names that failed to load
            # plain names: what the node supplies; "inputs.NAME": every workflow input
            available = {*node.inputs, *node.outputs, "ctx", *(f"inputs.{k}" for k in self.inputs)}
            if node.runtime is not None:
                out.extend(
                    f"node '{nid}': {p} @ {where}.runtime"
                    for p in node.runtime.check(node, available)
                )
            if node.effect is not None:
                out.extend(f"node '{nid}': {p} @ {where}.effect" for p in node.effect.check(node))
        if self.output is not None:
            target, _, member = self.output.partition(".")
            if target not in self.nodes:
                out.append(f"workflow output refers to unknown node '{target}' @ output")
            elif (
                member
                and member not in self.nodes[target].outputs
                and not (broken.get(target, set()) & {"*", "outputs"})
            ):
                outs = ", ".join(self.nodes[target].outputs) or "(none)"
                out.append(
                    f"workflow output refers to output '{member}' which node '{target}' "
                    f"does not declare (its outputs: {outs}) @ output"
                )
        cycle = self._find_cycle()
        if cycle:
            out.append(f"dependency cycle: {' -> '.join(cycle)} @ nodes.{cycle[0]}")
        return out

    def _reference_problems(
        self, nid: str, ref: Reference, broken: Mapping[str, set[str]]
    ) -> list[str]:
        where = f"nodes.{nid}.inputs.{ref.param}"
        if ref.is_workflow_input:
            if ref.member is None or ref.member not in self.inputs:
                known = ", ".join(self.inputs) or "(none)"
                return [
                    f"node '{nid}': input '{ref.param}' refers to unknown workflow input "
                    f"'{ref.text}'; declared inputs: {known} @ {where}"
                ]
            return []
        if ref.target not in self.nodes:
            return [
                f"node '{nid}': input '{ref.param}' refers to unknown node '{ref.target}' @ {where}"
            ]
        if ref.target == nid:
            return [f"node '{nid}' refers to itself @ {where}"]
        target = self.nodes[ref.target]
        if (
            ref.member is not None
            and ref.member not in target.outputs
            and not broken.get(ref.target, set()) & {"*", "outputs"}
        ):
            outs = ", ".join(target.outputs) or "(none)"
            return [
                f"node '{nid}': input '{ref.param}' refers to output '{ref.member}' which "
                f"node '{ref.target}' does not declare (its outputs: {outs}) @ {where}"
            ]
        return []

    def _find_cycle(self) -> list[str] | None:
        # iterative depth-first search: a long chain must not hit the recursion limit
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        for root in self.nodes:
            if root in state:
                continue
            path: list[str] = [root]
            pending: list[Iterator[str]] = [iter(self.dependencies(root))]
            state[root] = 1
            while pending:
                dep = next(pending[-1], None)
                if dep is None:
                    state[path.pop()] = 2
                    pending.pop()
                elif dep not in self.nodes or state.get(dep) == 2:
                    continue
                elif state.get(dep) == 1:
                    return [*path[path.index(dep) :], dep]
                else:
                    state[dep] = 1
                    path.append(dep)
                    pending.append(iter(self.dependencies(dep)))
        return None

    def validate(self, policy: LoadPolicy | None = None) -> Workflow:
        """Raise :class:`ValidationError` listing every problem (or ``PolicyViolation``).

        A successful validation is remembered (per policy) until the workflow changes.
        """
        key = ("valid", id(policy))
        if key in self._cache:
            return self
        problems = self.problems()
        if problems:
            raise ValidationError(f"workflow '{self.name}' is invalid", problems)
        if policy is not None:
            refused = [p for n in self.nodes.values() for p in policy.problems(n)]
            if refused:
                raise PolicyViolation(
                    f"workflow '{self.name}' is refused by the load policy", refused
                )
        self._cache[key] = policy  # keeps the policy alive so its id is not reused
        return self

    def order(self) -> list[str]:
        """Node ids in a dependency-respecting order (definition order among peers)."""
        cached = self._cache.get("order")
        if cached is None:
            cached = self._cache["order"] = self._order()
        return list(cached)

    def _order(self) -> list[str]:
        import heapq

        position = {n: i for i, n in enumerate(self.nodes)}
        remaining = dict.fromkeys(self.nodes, 0)
        dependants: dict[str, list[str]] = {n: [] for n in self.nodes}
        for n in self.nodes:
            for d in self.dependencies(n):
                if d in self.nodes:
                    remaining[n] += 1
                    dependants[d].append(n)
        heap = [position[n] for n, left in remaining.items() if left == 0]
        heapq.heapify(heap)
        names = list(self.nodes)
        out: list[str] = []
        while heap:
            n = names[heapq.heappop(heap)]
            out.append(n)
            for m in dependants[n]:
                remaining[m] -= 1
                if remaining[m] == 0:
                    heapq.heappush(heap, position[m])
        if len(out) != len(self.nodes):
            raise ValidationError(f"workflow '{self.name}' has a dependency cycle")
        return out

    # --- serialization -------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The definition as plain data (the file format), with a content hash per node.

        Computed once and cached until the workflow changes; do not mutate the result.
        """
        cached = self._cache.get("dict")
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        nodes = {nid: _node_dict(n) for nid, n in self.nodes.items()}
        self._cache["dict"] = data = {
            "name": self.name,
            "inputs": {k: converter.unstructure(v) for k, v in self.inputs.items()},
            "nodes": nodes,
            "output": self.output,
            "max_steps": self.max_steps,
            "base_dir": str(self.base_dir) if self.base_dir is not None else None,
            "source": self.source,
            "node_hashes": {nid: _hash(d) for nid, d in nodes.items()},
        }
        return data

    def node_hashes(self) -> dict[str, str]:
        """A content hash per node: what changed between two definitions."""
        return dict(self.to_dict()["node_hashes"])

    def definition_id(self) -> str:
        """A content id for the whole definition."""
        cached = self._cache.get("id")
        if cached is None:
            d = self.to_dict()
            cached = _hash({k: v for k, v in d.items() if k not in ("source", "base_dir")})[:32]
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
    ) -> Workflow:
        """Build (and validate) a workflow from plain data; every problem is reported at once.

        Args:
            data: the definition, as in a workflow file (or :meth:`to_dict`).
            registry: where plugin kinds are looked up (the default registry if None).
            source: where the definition came from (a file name), kept for messages.
            base_dir: the directory relative references resolve against; plugins
                see it as :func:`current_base_dir` while their config is structured.

        Raises:
            ValidationError: with one ``"message @ dotted.path"`` line per problem.
        """
        from spindle.core.plugin import default_registry

        reg = registry or default_registry()
        if not isinstance(data, Mapping):
            raise ValidationError(
                "a workflow definition must be a mapping",
                [f"expected a mapping, got {type(data).__name__} @ $"],
            )
        problems: list[str] = []
        for key in data:
            if key not in _WORKFLOW_FIELDS:
                problems.append(
                    f"unknown field '{key}'; known fields: "
                    f"{', '.join(_WORKFLOW_FIELDS[:6])} @ {key}"
                )
        name = data.get("name")
        if not isinstance(name, str) or not name:
            problems.append("required field 'name' missing or not a string @ name")
            name = "<unnamed>"
        inputs = _structure_inputs(data.get("inputs"), problems)
        output = data.get("output")
        if output is not None and not isinstance(output, str):
            problems.append(
                f"expected a string naming a node (NODE or NODE.OUTPUT), got "
                f"{type(output).__name__} {output!r} @ output"
            )
            output = None
        max_steps = data.get("max_steps")
        if max_steps is not None and (type(max_steps) is not int or max_steps < 1):
            problems.append(
                f"expected a positive integer, got {type(max_steps).__name__} "
                f"{max_steps!r} @ max_steps"
            )
            max_steps = None
        for key in ("base_dir", "source"):
            if data.get(key) is not None and not isinstance(data[key], str):
                problems.append(
                    f"expected a string, got {type(data[key]).__name__} {data[key]!r} @ {key}"
                )
        bd = base_dir if base_dir is not None else data.get("base_dir")
        wf = cls(
            name,
            output=output,
            base_dir=bd if isinstance(bd, str | Path) else None,
            source=source or _str_or_none(data.get("source")),
            max_steps=max_steps,
            registry=reg,
        )
        wf.inputs = inputs
        raw_nodes = data.get("nodes")
        if not isinstance(raw_nodes, Mapping):
            problems.append(
                "required field 'nodes' missing or not a mapping of node id to node @ nodes"
            )
            raw_nodes = {}
        broken: dict[str, set[str]] = {}
        with using_registry(reg), _base_dir_context(wf.base_dir):
            for key, raw in raw_nodes.items():
                nid = str(key)
                path = f"nodes.{nid}"
                if not isinstance(raw, Mapping):
                    problems.append(
                        f"expected a mapping for node '{nid}', got "
                        f"{type(raw).__name__} {raw!r} @ {path}"
                    )
                    wf.nodes[nid] = NodeSpec(id=nid)
                    broken[nid] = {"*"}
                    continue
                node, errs, failed = _structure_node(nid, raw, path)
                problems.extend(errs)
                wf.nodes[nid] = node
                if failed:
                    broken[nid] = failed
        # graph checks run on what did load, so one pass reports everything
        problems.extend(wf._problems(broken))
        if problems:
            raise ValidationError(f"workflow '{name}' is invalid", problems)
        return wf
