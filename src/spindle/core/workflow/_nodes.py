"""The pieces of a workflow definition: nodes, references, retries, artifacts, policy.

:class:`~spindle.core.workflow.Workflow` assembles these; they are plain attrs
data so both authoring forms (files and Python) produce the same model.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from attrs import define, field

from spindle.core._quote import quote
from spindle.core.model import RetryPolicy, converter
from spindle.core.plugin import EffectHandler, Executor, Runtime
from spindle.core.workflow._cache_spec import CacheSpec, as_cache_spec
from spindle.core.workflow._function_policy import function_problems, pattern_problems
from spindle.core.workflow._resources import ResourceAmount

__all__ = [
    "ArtifactSpec",
    "BranchSpec",
    "InputSpec",
    "LoadPolicy",
    "LoopSpec",
    "MapSpec",
    "NodeSpec",
    "Reference",
    "canonical_json",
    "current_base_dir",
]

ArtifactKind = Literal["file", "folder", "json", "value"]


def canonical_json(data: Any) -> str:
    """Serialize ``data`` deterministically (sorted keys, no spaces) for hashing."""
    return _CANONICAL.encode(data)


def _json_default(obj: Any) -> Any:
    unstructured = converter.unstructure(obj)
    if unstructured is obj:
        raise TypeError(f"cannot serialize {type(obj).__name__} {quote(obj)} to JSON")
    return unstructured


# One encoder for every call: json.dumps builds a new one per call when given
# options, which costs more than encoding a node's few fields.
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
)


@define
class ArtifactSpec:
    """A declared node output (or input) artifact.

    ``file``/``folder`` are paths relative to the run dir that must exist after
    the node; ``json`` is a file holding JSON; ``value`` is a key of the node's
    returned mapping (or the whole result when ``key`` is empty).

    Attributes:
        kind: ``file``, ``folder``, ``json`` or ``value``.
        path: where the file, folder or JSON file is, relative to the run dir (it
            must stay inside it).
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
        secret: redacted from the ledger, logs and events; never stored (its
            default neither), so a run continued in another process is given it
            again; a command gets it in its environment, never in its command line.
        description: what the input is for.
    """

    default: Any = None
    required: bool = False
    secret: bool = False
    description: str | None = None


@define
class BranchSpec:
    """A branch node's choice: ``on`` names the node whose result picks a case.

    Attributes:
        on: a reference (``NODE`` or ``NODE.OUTPUT``) whose value selects the case.
        cases: case value (as text: ``"yes"``, ``"1"``, ``"true"``) to the nodes it makes live.
        default: the nodes made live when no case matches.
    """

    on: str
    cases: dict[str, list[str]] = field(factory=dict)
    default: list[str] = field(factory=list)

    def listed(self) -> list[str]:
        """Every node a case or the default names, once each, in order."""
        return list(dict.fromkeys([*(n for ns in self.cases.values() for n in ns), *self.default]))


@define
class MapSpec:
    """A map node: one durable child node per item of ``over`` (ids ``NAME[i]``).

    Attributes:
        over: ``NODE``, ``NODE.OUTPUT`` or ``inputs.NAME`` holding a list; None with ``range``.
        range: map over ``0 .. range-1`` instead of a list.
        node: the template each item runs; ``item``, ``item.KEY`` and ``index`` are
            references to the item, one of its keys and its position.
        concurrency: at most this many items run at once (None: the run's limit).
        max_failures: items that may fail (their results are None) before the map fails.
    """

    node: NodeSpec
    over: str | None = None
    range: int | None = None
    concurrency: int | None = None
    max_failures: int = 0


@define
class LoopSpec:
    """A loop node: its ``body`` runs as iteration ``NAME#k`` until ``until`` holds.

    Attributes:
        body: the nodes of one iteration (ids unique within the body); they may
            refer to each other, to upstream nodes, to ``iteration`` (k, from 0)
            and to ``previous.B`` (body node B's result in the iteration before).
        until: a condition over the iteration's body results (``B``, ``B.OUTPUT``),
            ``iteration`` and upstream nodes, checked after each iteration.
        max_iterations: the loop ends after this many iterations whatever ``until`` says.
    """

    body: list[NodeSpec]
    until: Any = None
    max_iterations: int = 100

    def body_ids(self) -> list[str]:
        """The body's node ids, in order."""
        return [n.id for n in self.body]


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
        allow_outside_paths: let this node's output paths and working directory
            leave the run directory (absolute, or climbing out with ``..``).
            Only for a trusted workflow: a load policy refuses it.
        when: a condition (see ``docs/control-flow.md``) over upstream results and
            inputs, or (Python API) a predicate taking them by parameter name; false
            skips the node.
        join: ``all`` (default): run when every dependency ended, at least one of them
            not skipped; ``any``: run as soon as one dependency completed.
        branch: this node chooses which of the listed nodes are live (no runtime).
        map: this node runs a template once per item (no runtime).
        loop: this node runs its body again and again until a condition holds.
        resources: what one attempt needs of the machine running it (``{cpu: 2,
            memory: 4GiB}``): numbers, or sizes with a unit; an executor that places
            work on a cluster (``dask``) asks its scheduler for them, others ignore them.
        cache: reuse the result of a completed node of any run with the same fingerprint
            (``true``, ``false`` or ``{key, ttl, files}``; see ``docs/caching.md``).
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
    allow_outside_paths: bool = False
    when: Any = None
    join: Literal["all", "any"] = "all"
    branch: BranchSpec | None = None
    map: MapSpec | None = None
    loop: LoopSpec | None = None
    resources: dict[str, ResourceAmount] = field(factory=dict)
    cache: CacheSpec | None = field(default=None, converter=as_cache_spec)

    @property
    def kind(self) -> str:
        """What the node is, in one word: its runtime's or its effect's kind, or
        ``map``, ``loop``, ``branch`` for a control-flow node (what lifecycle events
        carry as ``node_kind``, so metrics can count nodes by kind)."""
        for plugin in (self.runtime, self.effect):
            if plugin is not None:
                return plugin.kind_name or type(plugin).__name__
        if self.map is not None:
            return "map"
        if self.loop is not None:
            return "loop"
        return "branch" if self.branch is not None else "node"

    def references(self) -> list[Reference]:
        """Every reference in this node's ``inputs`` mapping (a map's template's included,
        but for its ``item``/``index`` references)."""
        out = []
        for name, value in self.inputs.items():
            if isinstance(value, str):
                out.append(Reference.parse(value, name))
        if self.map is not None:
            if self.map.over is not None:
                out.append(Reference.parse(self.map.over, "map.over"))
            out.extend(
                Reference(r.text, r.target, r.member, f"map.node.inputs.{r.param}")
                for r in self.map.node.references()
                if r.target not in ITEM_NAMES
            )
        if self.branch is not None:
            out.append(Reference.parse(self.branch.on, "branch.on"))
        if self.loop is not None:
            inner = {*self.loop.body_ids(), *LOOP_NAMES}
            for j, b in enumerate(self.loop.body):
                out.extend(
                    Reference(r.text, r.target, r.member, f"loop.body.{j}.inputs.{r.param}")
                    for r in b.references()
                    if r.target not in inner
                )
        return out


#: References a map's template may use for its item and the item's position.
ITEM_NAMES = ("item", "index")

#: References a loop's body and its ``until`` may use besides its body's nodes.
LOOP_NAMES = ("iteration", "previous")


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
    (when set) lists the programs a ``command`` node may start; a command line
    must then be plain: simple commands of those programs, joined by ``|``,
    ``&&``, ``||`` or ``;``, writing only to the node's declared outputs, with
    no ``shell`` or ``env`` override. ``allowed_functions`` (patterns such as
    ``"mypkg.tasks:*"``, see :mod:`spindle.core.workflow._function_policy`)
    lists the Python functions a ``python`` node may call; when it is not set
    but ``allowed_executables`` is, no function is allowed, since a Python
    function can start any program.
    """

    allow_kinds: list[str] | None = None
    deny_kinds: list[str] = field(factory=list)
    allowed_executables: list[str] | None = None
    allowed_functions: list[str] | None = None

    def __attrs_post_init__(self) -> None:
        bad = pattern_problems(self.allowed_functions or ())
        if bad:
            raise ValueError("allowed_functions: " + "; ".join(bad))

    @property
    def function_patterns(self) -> list[str] | None:
        """The function patterns in force (None: functions are not restricted)."""
        if self.allowed_functions is not None:
            return self.allowed_functions
        return [] if self.allowed_executables is not None else None

    def problems(self, node: NodeSpec) -> list[str]:
        """Return a line for each thing in ``node`` this policy refuses.

        Kinds, executables and function names as written are checked before a
        function is imported; an import happens only for a name the policy allows.
        """
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
        if out or node.runtime is None:
            return out
        found: list[str] = []
        if self.allowed_executables is not None:
            found.extend(node.runtime.executable_problems(node, self.allowed_executables))
        patterns = self.function_patterns
        if patterns is not None and not found:
            found.extend(function_problems(node.runtime, patterns))
        return [f"node '{node.id}': {p} @ nodes.{node.id}.runtime" for p in found]


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
