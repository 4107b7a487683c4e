"""The workflow model: nodes, references between them, validation, content hashes.

A :class:`Workflow` is built from a file (:mod:`spindle.core._loader`) or in
Python (``Workflow(...)`` with ``@wf.node``); both produce the same model and
the same serialized definition (:meth:`Workflow.to_dict`).

References in a node's ``inputs`` mapping are strings: ``inputs.NAME`` (a
workflow input), ``NODE`` (that node's result) or ``NODE.OUTPUT`` (one of its
declared outputs). A literal value is written ``{value: ...}``. Every
reference to a node is also a dependency.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import inspect
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from attrs import define, field

from spindle.core._bases import EffectHandler, Executor, Runtime
from spindle.core._converter import converter, structure, structure_errors, using_registry
from spindle.core.errors import PolicyViolation, SpindleError, ValidationError

if TYPE_CHECKING:
    from spindle.core._registry import Registry

__all__ = [
    "ArtifactSpec",
    "InputSpec",
    "LoadPolicy",
    "NodeSpec",
    "Reference",
    "RetryPolicy",
    "Workflow",
    "canonical_json",
]

F = TypeVar("F", bound=Callable[..., Any])

ArtifactKind = Literal["file", "folder", "json", "value"]


def canonical_json(data: Any) -> str:
    """Serialize ``data`` deterministically (sorted keys, no spaces) for hashing."""
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    )


def _json_default(obj: Any) -> Any:
    unstructured = converter.unstructure(obj)
    if unstructured is obj:
        raise TypeError(f"cannot serialize {type(obj).__name__} {obj!r} to JSON")
    return unstructured


@define
class RetryPolicy:
    """How a failing node is retried.

    The delay before attempt ``n+1`` is ``backoff * multiplier**(n-1)``, capped
    at ``max_backoff``, then spread by ``±jitter`` (a fraction). ``retry_on``
    lists exception class names (``ConnectionError`` or ``mod.Error``) that
    retry; empty means every failure retries. Timeouts retry like failures.

    Attributes:
        max_attempts: tries in all, the first included (1: no retry).
        backoff: seconds to wait after the first failure.
        multiplier: factor the wait grows by after each further failure.
        max_backoff: the longest wait, in seconds.
        jitter: spread each wait by up to this fraction, up or down.
        retry_on: exception class names that retry; empty: every failure retries.
    """

    max_attempts: int = 1
    backoff: float = 0.0
    multiplier: float = 2.0
    max_backoff: float = 300.0
    jitter: float = 0.0
    retry_on: list[str] = field(factory=list)

    def delay(self, attempt: int, rand: float = 0.5) -> float:
        """Seconds to wait after failed ``attempt`` (1-based); ``rand`` in [0, 1)."""
        base = min(self.backoff * (self.multiplier ** max(attempt - 1, 0)), self.max_backoff)
        spread = base * self.jitter * (2 * rand - 1)
        return max(0.0, base + spread)

    def retries(self, error_type: str, error_mro: Iterable[str] = ()) -> bool:
        """Whether a failure of class ``error_type`` (with base names ``error_mro``) retries."""
        if not self.retry_on:
            return True
        names = {error_type, *error_mro}
        short = {n.rsplit(".", 1)[-1] for n in names}
        return any(r in names or r in short for r in self.retry_on)


@define
class ArtifactSpec:
    """A declared node output (or input) artifact.

    ``file``/``folder`` are paths relative to the run dir that must exist after
    the node; ``json`` is a file holding JSON; ``value`` is a key of the node's
    returned mapping (or the whole result when ``key`` is empty).

    Attributes:
        kind: ``file``, ``folder``, ``json`` or ``value``.
        path: where the file, folder or JSON file is, relative to the run dir.
        key: for ``value``: the key of the node's returned mapping (empty: all of it).
        description: what the output holds.
    """

    kind: ArtifactKind = "value"
    path: str | None = None
    key: str | None = None
    description: str | None = None


@define
class InputSpec:
    """A workflow input: a default, whether it is required, whether it is secret.

    Attributes:
        default: the value used when a run does not give one.
        required: a run must give a value.
        secret: redacted from the ledger, logs and events.
        description: what the input is for.
    """

    default: Any = None
    required: bool = False
    secret: bool = False
    description: str | None = None


@define
class NodeSpec:
    """One node: a task (``runtime`` + optional ``executor``) or an ``effect``.

    Attributes:
        id: the node's id, unique in its workflow.
        runtime: prepares the task's payload (``{kind: ..., ...}``).
        executor: runs the payload (default: the runtime's ``default_executor``).
        effect: what the node asks of the engine instead of running a task.
        inputs: parameter name to reference (``inputs.NAME``, ``NODE``,
            ``NODE.OUTPUT``) or literal (``{value: ...}``).
        outputs: declared outputs by name.
        after: nodes this one runs after, without taking their data.
        retry: how a failure is retried.
        timeout: seconds an attempt may take before it fails.
        continue_on_failure: the run goes on when this node fails.
        description: what the node does.
    """

    id: str
    runtime: Runtime[Any] | None = None
    executor: Executor[Any] | None = None
    effect: EffectHandler | None = None
    inputs: dict[str, Any] = field(factory=dict)
    outputs: dict[str, ArtifactSpec] = field(factory=dict)
    after: list[str] = field(factory=list)
    retry: RetryPolicy | None = None
    timeout: float | None = None
    continue_on_failure: bool = False
    description: str | None = None

    def references(self) -> list[Reference]:
        """Every reference in this node's ``inputs`` mapping."""
        out = []
        for name, value in self.inputs.items():
            if isinstance(value, str):
                out.append(Reference.parse(value, name))
        return out


@define(frozen=True)
class Reference:
    """A parsed input reference: ``inputs.NAME``, ``NODE`` or ``NODE.OUTPUT``."""

    text: str
    target: str  # node id, or "inputs"
    member: str | None  # input name / output name
    param: str

    @classmethod
    def parse(cls, text: str, param: str) -> Reference:
        """Split ``text`` at its first dot."""
        head, _, tail = text.partition(".")
        return cls(text, head, tail or None, param)

    @property
    def is_workflow_input(self) -> bool:
        """Whether this names a workflow input rather than a node."""
        return self.target == "inputs"


@define
class LoadPolicy:
    """What a workflow definition may use; enforced before anything runs.

    Kinds are ``"group.kind"`` (``"runtime.python_code"``). ``allowed_executables``
    (when set) lists the programs a ``command`` node may start.
    """

    allow_kinds: list[str] | None = None
    deny_kinds: list[str] = field(factory=list)
    allowed_executables: list[str] | None = None

    def problems(self, node: NodeSpec) -> list[str]:
        """Return a line for each thing in ``node`` this policy refuses."""
        out: list[str] = []
        for group, plugin in (
            ("runtime", node.runtime),
            ("executor", node.executor),
            ("effect", node.effect),
        ):
            if plugin is None:
                continue
            name = f"{group}.{plugin.kind_name}"
            if name in self.deny_kinds or (
                self.allow_kinds is not None and name not in self.allow_kinds
            ):
                out.append(
                    f"node '{node.id}': {group} kind '{plugin.kind_name}' is not allowed "
                    f"by the load policy @ nodes.{node.id}.{group}.kind"
                )
        if self.allowed_executables is not None and node.runtime is not None:
            exes = node.runtime.executables()
            if exes is not None:
                for exe in exes:
                    if exe not in self.allowed_executables:
                        out.append(
                            f"node '{node.id}': executable '{exe}' is not in the policy's "
                            f"allowed executables ({', '.join(self.allowed_executables) or 'none'})"
                            f" @ nodes.{node.id}.runtime"
                        )
        return out


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
            from spindle.core._registry import default_registry

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
        from spindle.core._registry import default_registry

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


_WORKFLOW_FIELDS = (
    "name",
    "inputs",
    "nodes",
    "output",
    "max_steps",
    "description",
    # written by to_dict(); accepted so a dump loads back
    "base_dir",
    "source",
    "node_hashes",
)

_INPUT_FIELDS = {"default", "required", "secret", "description"}


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _structure_inputs(raw: Any, problems: list[str]) -> dict[str, InputSpec]:
    """Workflow inputs: ``{name: default}`` or ``{name: {default:, required:, secret:}}``."""
    inputs: dict[str, InputSpec] = {}
    if raw is None:
        return inputs
    if not isinstance(raw, Mapping):
        problems.append(
            f"expected a mapping of input defaults, got {type(raw).__name__} {raw!r} @ inputs"
        )
        return inputs
    for key, value in raw.items():
        k = str(key)
        if isinstance(value, Mapping) and value and set(value) <= _INPUT_FIELDS:
            try:
                inputs[k] = converter.structure(dict(value), InputSpec)
            except Exception as exc:
                if not _is_structure_error(exc):
                    raise
                problems.extend(structure_errors(exc, f"inputs.{k}"))
        else:
            inputs[k] = InputSpec(default=value)
    return inputs


def _is_structure_error(exc: BaseException) -> bool:
    return isinstance(exc, SpindleError | TypeError | ValueError | KeyError | BaseExceptionGroup)


def _node(node_id: str, **options: Any) -> NodeSpec:
    """A node from Python-API arguments; mappings are structured like file content."""
    path = f"nodes.{node_id}"
    retry = options.pop("retry", None)
    if isinstance(retry, Mapping):
        retry = structure(dict(retry), RetryPolicy, path=f"{path}.retry", what="retry policy")
    outputs = {
        str(k): v
        if isinstance(v, ArtifactSpec)
        else structure(v, ArtifactSpec, path=f"{path}.outputs.{k}", what="output")
        for k, v in (options.pop("outputs", None) or {}).items()
    }
    inputs = dict(options.pop("inputs", None) or {})
    after = list(options.pop("after", None) or [])
    return NodeSpec(id=node_id, retry=retry, outputs=outputs, inputs=inputs, after=after, **options)


_NODE_FIELDS = (
    "runtime",
    "executor",
    "effect",
    "inputs",
    "outputs",
    "after",
    "retry",
    "timeout",
    "continue_on_failure",
    "description",
)

_NODE_TYPES: dict[str, Any] = {
    "runtime": Runtime,
    "executor": Executor,
    "effect": EffectHandler,
    "outputs": dict[str, ArtifactSpec],
    "after": list[str],
    "retry": RetryPolicy,
    "timeout": float,
    "continue_on_failure": bool,
    "description": str,
}


def _structure_node(
    nid: str, raw: Mapping[str, Any], path: str
) -> tuple[NodeSpec, list[str], set[str]]:
    """Structure one node; return it (without the fields that failed), problems, failed fields."""
    problems: list[str] = []
    failed: set[str] = set()
    for key in raw:
        if key not in _NODE_FIELDS:
            problems.append(
                f"unknown field '{key}' in node '{nid}'; known fields: "
                f"{', '.join(_NODE_FIELDS)} @ {path}.{key}"
            )
    values: dict[str, Any] = {}
    for key, typ in _NODE_TYPES.items():
        if key not in raw or raw[key] is None:
            continue
        try:
            values[key] = converter.structure(raw[key], typ)
        except Exception as exc:
            if not _is_structure_error(exc):
                raise
            problems.extend(structure_errors(exc, f"{path}.{key}"))
            failed.add(key)
    raw_inputs = raw.get("inputs")
    if raw_inputs is not None and not isinstance(raw_inputs, Mapping):
        problems.append(
            f"expected a mapping of parameter to reference, got "
            f"{type(raw_inputs).__name__} {raw_inputs!r} @ {path}.inputs"
        )
        failed.add("inputs")
    elif raw_inputs:
        inputs: dict[str, Any] = {}
        for k, v in raw_inputs.items():
            if isinstance(v, str):
                inputs[str(k)] = v
            elif isinstance(v, Mapping) and set(v) == {"value"}:
                inputs[str(k)] = {"value": v["value"]}
            else:
                problems.append(
                    f"input '{k}' must be a reference string (inputs.NAME, NODE or NODE.OUTPUT) "
                    f"or {{value: ...}} for a literal, got {v!r} @ {path}.inputs.{k}"
                )
                failed.add("inputs")
        values["inputs"] = inputs
    return NodeSpec(id=nid, **values), problems, failed


def _node_dict(node: NodeSpec) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if node.runtime is not None:
        d["runtime"] = converter.unstructure(node.runtime)
    if node.executor is not None:
        d["executor"] = converter.unstructure(node.executor)
    if node.effect is not None:
        d["effect"] = converter.unstructure(node.effect)
    if node.inputs:
        d["inputs"] = dict(node.inputs)
    if node.outputs:
        d["outputs"] = {k: _strip_none(converter.unstructure(v)) for k, v in node.outputs.items()}
    if node.after:
        d["after"] = list(node.after)
    if node.retry is not None:
        d["retry"] = converter.unstructure(node.retry)
    if node.timeout is not None:
        d["timeout"] = node.timeout
    if node.continue_on_failure:
        d["continue_on_failure"] = True
    if node.description:
        d["description"] = node.description
    return d


def _strip_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _hash(data: Any) -> str:
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()


# The directory a workflow file lives in, so plugins can resolve relative
# references ("mymodule:fn" next to the file) while their config is structured.
_BASE_DIR: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "spindle_base_dir", default=None
)


@contextlib.contextmanager
def _base_dir_context(path: Path | None) -> Iterator[None]:
    token = _BASE_DIR.set(path)
    try:
        yield
    finally:
        _BASE_DIR.reset(token)


def current_base_dir() -> Path | None:
    """The directory of the workflow file being loaded, if any (for plugin config hooks)."""
    return _BASE_DIR.get()
