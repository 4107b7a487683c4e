"""Turning plain data into workflows and their nodes and back: structuring, checks, hashing.

The file format and the stored definition are the same plain data; these
helpers convert between it and :class:`~spindle.core.workflow.Workflow` (with
its :class:`~spindle.core.workflow.NodeSpec` nodes), collecting every problem
with its path instead of stopping at the first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spindle.core._quote import quote
from spindle.core.errors import PolicyViolation, SpindleError, ValidationError
from spindle.core.model import RetryPolicy, converter, structure, structure_errors
from spindle.core.plugin import EffectHandler, Executor, Runtime, using_registry
from spindle.core.workflow._analysis import structural_problems
from spindle.core.workflow._cache_spec import CacheSpec, workflow_cache
from spindle.core.workflow._control import control_dict, structure_control
from spindle.core.workflow._nodes import (
    ArtifactSpec,
    InputSpec,
    NodeSpec,
    _base_dir_context,
    canonical_json,
)
from spindle.core.workflow._queue_field import parse_queue
from spindle.core.workflow._resources import ResourceAmount
from spindle.core.workflow._schedule import structure_schedule
from spindle.core.workflow._subflow import is_reference_mapping, subflow_effect

if TYPE_CHECKING:
    from spindle.core.plugin import Registry
    from spindle.core.workflow._nodes import LoadPolicy
    from spindle.core.workflow._workflow import Workflow

_WORKFLOW_FIELDS = (
    *("name", "inputs", "nodes", "output", "max_steps", "description", "queue", "schedule"),
    "cache",
    # written by to_dict(); accepted so a dump loads back
    *("base_dir", "source", "node_hashes"),
)

_INPUT_FIELDS = {"default", "required", "secret", "description"}

#: Key in a workflow's cache: its structural checks found nothing (dropped when it changes).
STRUCTURALLY_VALID = "structurally-valid"


def _structure_inputs(raw: Any, problems: list[str]) -> dict[str, InputSpec]:
    """Workflow inputs: ``{name: default}`` or ``{name: {default:, required:, secret:}}``."""
    inputs: dict[str, InputSpec] = {}
    if raw is None:
        return inputs
    if not isinstance(raw, Mapping):
        problems.append(
            f"expected a mapping of input defaults, got {type(raw).__name__} {quote(raw)} @ inputs"
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
    raw_control: dict[str, Any] = {
        k: options.pop(k) for k in ("branch", "map", "loop", "join") if k in options
    }
    if raw_control:
        control, problems, _ = structure_control(node_id, raw_control, path, _structure_node)
        if problems:
            raise ValidationError(f"node '{node_id}' is invalid", problems)
        options.update(control)
    return NodeSpec(id=node_id, retry=retry, outputs=outputs, inputs=inputs, after=after, **options)


_NODE_FIELDS = (
    *("runtime", "executor", "effect", "inputs", "outputs", "after", "retry", "timeout"),
    *(
        "continue_on_failure",
        "description",
        "allow_outside_paths",
        "when",
        "join",
        "branch",
        "map",
        "loop",
        "workflow",
        "resources",
        "cache",
    ),
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
    "allow_outside_paths": bool,
    "resources": dict[str, ResourceAmount],
    "cache": CacheSpec,
}


def _structure_node(
    nid: str, raw: Mapping[str, Any], path: str
) -> tuple[NodeSpec, list[str], set[str]]:
    """Structure one node; return it (without the fields that failed), problems, failed fields."""
    problems: list[str] = []
    failed: set[str] = set()
    if raw.get("workflow") is not None:
        raw, problems = subflow_effect(raw, path)
        if problems:
            failed.add("effect")
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
        if key == "after" and type(raw[key]) is list and all(type(a) is str for a in raw[key]):
            values[key] = list(raw[key])  # what the converter makes of it, without its dispatch
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
            f"{type(raw_inputs).__name__} {quote(raw_inputs)} @ {path}.inputs"
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
                    f"or {{value: ...}} for a literal, got {quote(v)} @ {path}.inputs.{k}"
                )
                failed.add("inputs")
        values["inputs"] = inputs
    if not raw.keys().isdisjoint(("when", "join", "branch", "map", "loop")):
        control, errs, bad = structure_control(nid, raw, path, _structure_node)
        values.update(control)
        problems.extend(errs)
        failed |= bad
    return NodeSpec(id=nid, **values), problems, failed


def _input_dict(spec: InputSpec) -> dict[str, Any]:
    """An input as plain data; a secret's default is withheld (a definition is stored)."""
    data: dict[str, Any] = converter.unstructure(spec)
    if spec.secret:
        data["default"] = None
    return data


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
    if node.allow_outside_paths:
        d["allow_outside_paths"] = True
    if node.resources:
        d["resources"] = dict(node.resources)
    if node.cache is not None:
        d["cache"] = node.cache.to_dict()
    if node.when is not None or node.branch or node.map or node.loop:
        d.update(control_dict(node, _node_dict))
    elif node.join != "all":
        d["join"] = node.join
    return d


def _strip_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _definition_json(definition: Mapping[str, Any], node_json: Mapping[str, str]) -> str:
    """``canonical_json(definition)``, byte for byte, with each node's JSON given.

    The definition id hashes the whole definition, nodes included, and each
    node was just serialized for its own hash: the nodes' JSON is spliced in
    rather than encoded again. Keys are strings, sorted, ``","`` and ``":"``
    between them, as :func:`canonical_json` writes them.
    """
    parts = []
    for key in sorted(definition):
        if key == "nodes":
            body = ",".join(f"{canonical_json(n)}:{node_json[n]}" for n in sorted(node_json))
            value = f"{{{body}}}"
        else:
            value = canonical_json(definition[key])
        parts.append(f"{canonical_json(key)}:{value}")
    return f"{{{','.join(parts)}}}"


def _workflow_from_dict(
    cls: type[Workflow],
    data: Mapping[str, Any],
    *,
    registry: Registry | None,
    source: str | None,
    base_dir: str | Path | None,
    policy: LoadPolicy | None = None,
) -> Workflow:
    """Build ``cls`` from plain data, every problem at once (:meth:`Workflow.from_dict`).

    Raises:
        PolicyViolation: ``policy`` refuses a node; checked before the structural
            checks, which import the functions a definition names.
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
                f"unknown field '{key}'; known fields: {', '.join(_WORKFLOW_FIELDS[:6])} @ {key}"
            )
    name = data.get("name")
    if not isinstance(name, str) or not name:
        problems.append("required field 'name' missing or not a string @ name")
        name = "<unnamed>"
    inputs = _structure_inputs(data.get("inputs"), problems)
    output = data.get("output")
    if is_reference_mapping(output):
        output = dict(output)
    elif output is not None and not isinstance(output, str):
        problems.append(
            f"expected a string naming a node (NODE or NODE.OUTPUT), or a mapping of name to "
            f"such a reference, got {type(output).__name__} {quote(output)} @ output"
        )
        output = None
    max_steps = data.get("max_steps")
    if max_steps is not None and (type(max_steps) is not int or max_steps < 1):
        problems.append(
            f"expected a positive integer, got {type(max_steps).__name__} {quote(max_steps)} "
            "@ max_steps"
        )
        max_steps = None
    for key in ("base_dir", "source"):
        if data.get(key) is not None and not isinstance(data[key], str):
            problems.append(
                f"expected a string, got {type(data[key]).__name__} {quote(data[key])} @ {key}"
            )
    bd = base_dir if base_dir is not None else data.get("base_dir")
    wf = cls(
        name,
        output=output,
        base_dir=bd if isinstance(bd, str | Path) else None,
        source=source or (given if isinstance(given := data.get("source"), str) else None),
        max_steps=max_steps,
        registry=reg,
    )
    wf.inputs = inputs
    wf.queue = parse_queue(data.get("queue"), inputs, problems)
    wf.schedule = structure_schedule(data.get("schedule"), problems)
    wf.cache = workflow_cache(data.get("cache"), problems)
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
                    f"{type(raw).__name__} {quote(raw)} @ {path}"
                )
                wf.nodes[nid] = NodeSpec(id=nid)
                broken[nid] = {"*"}
                continue
            node, errs, failed = _structure_node(nid, raw, path)
            problems.extend(errs)
            wf.nodes[nid] = node
            if failed:
                broken[nid] = failed
    if policy is not None:
        refused = [p for i, n in wf.nodes.items() if i not in broken for p in policy.problems(n)]
        if refused:
            raise PolicyViolation(f"workflow '{name}' is refused by the load policy", refused)
    # graph checks run on what did load, so one pass reports everything
    problems.extend(structural_problems(wf, broken))
    if problems:
        raise ValidationError(f"workflow '{name}' is invalid", problems)
    wf._cache[STRUCTURALLY_VALID] = True  # validate() need not check the same graph again
    return wf


def input_values(workflow: Workflow, given: Mapping[str, Any]) -> dict[str, Any]:
    """The run's inputs: ``given`` over the declared defaults.

    Raises:
        ValidationError: an input is not declared, or a required one is missing
            (every problem at once).
    """
    problems = []
    unknown = [k for k in given if k not in workflow.inputs]
    if unknown:
        declared = ", ".join(workflow.inputs) or "(none)"
        problems += [
            f"unknown input '{k}'; workflow '{workflow.name}' declares: {declared}" for k in unknown
        ]
    values: dict[str, Any] = {}
    for name, spec in workflow.inputs.items():
        if name in given:
            values[name] = given[name]
        elif spec.required:
            problems.append(f"input '{name}' is required; pass --input {name}=VALUE")
        else:
            values[name] = spec.default
    if problems:
        raise ValidationError(f"invalid inputs for workflow '{workflow.name}'", problems)
    return values
