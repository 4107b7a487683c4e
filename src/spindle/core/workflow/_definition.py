"""Turning plain data into workflow nodes and back: structuring, checks, hashing.

The file format and the stored definition are the same plain data; these
helpers convert between it and :class:`~spindle.core.workflow.NodeSpec`,
collecting every problem with its path instead of stopping at the first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from spindle.core.errors import SpindleError, ValidationError
from spindle.core.model import converter, structure, structure_errors
from spindle.core.plugin import EffectHandler, Executor, Runtime
from spindle.core.workflow._nodes import (
    ArtifactSpec,
    InputSpec,
    NodeSpec,
    RetryPolicy,
    canonical_json,
)

if TYPE_CHECKING:
    from spindle.core.workflow._workflow import Workflow

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
