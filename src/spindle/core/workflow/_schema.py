"""A JSON Schema (draft 2020-12) of workflow files, built from the installed kinds.

Each plugin group a workflow file names (``runtime``, ``executor``, ``effect``)
becomes a ``oneOf`` of its kinds; each kind is an object with
``kind: {const: ...}`` and one property per attrs field of the plugin class
(type, default, description), ``required`` for the fields without a default
and ``additionalProperties: false`` — the same rules the loader enforces. A
field's description comes from ``attrs.field(metadata={"description": ...})``
or from the ``Attributes:`` section of the class docstring.

Editors use it for completion (``# yaml-language-server: $schema=...``);
``spindle schema`` prints it and ``docs/gen_reference.py`` renders it as the
workflow reference. A kind that cannot be loaded is left out with a
``$comment`` saying why, so one broken plugin never hides the others.

This module assembles the documents; ``_schema_builder`` converts classes
and annotations, and ``_docstrings`` reads their descriptions.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from spindle.core.workflow._cache_spec import CACHE_SCHEMA
from spindle.core.workflow._nodes import InputSpec, NodeSpec
from spindle.core.workflow._schedule import SCHEDULE_SCHEMA
from spindle.core.workflow._schema_builder import SchemaBuilder

if TYPE_CHECKING:
    from spindle.core.plugin import Registry

__all__ = ["SCHEMA_DIALECT", "WORKFLOW_GROUPS", "group_schema", "kind_schema", "workflow_schema"]

#: The JSON Schema dialect of every schema this module builds.
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

#: The plugin groups a workflow file configures, in the order they are listed.
WORKFLOW_GROUPS: tuple[str, ...] = ("runtime", "executor", "effect")

_NODE_INPUT: dict[str, Any] = {
    "description": "A reference (`inputs.NAME`, `NODE` or `NODE.OUTPUT`) or a literal "
    "written `{value: ...}`.",
    "anyOf": [
        {"type": "string", "minLength": 1},
        {
            "type": "object",
            "properties": {"value": {}},
            "required": ["value"],
            "additionalProperties": False,
        },
    ],
}


_WORKFLOW_NODE: dict[str, Any] = {
    "description": "Run another workflow file as a child run (the `subworkflow` effect): "
    "`PATH`, or `{path, output, max_depth}`; the node's `inputs` are the child's inputs.",
    "oneOf": [
        {"type": "string", "minLength": 1},
        {
            "type": "object",
            "required": ["path"],
            "additionalProperties": False,
            "properties": {
                "path": {"type": "string", "minLength": 1},
                "output": {
                    "description": "What of the child is the node's result: `NODE`, "
                    "`NODE.OUTPUT`, or a mapping of name to one (default: its output).",
                    "oneOf": [
                        {"type": "string", "minLength": 1},
                        {
                            "type": "object",
                            "minProperties": 1,
                            "additionalProperties": {"type": "string", "minLength": 1},
                        },
                    ],
                },
                "max_depth": {"type": "integer", "minimum": 1, "default": 10},
            },
        },
    ],
}


def _control_schemas(defs: dict[str, Any], node: dict[str, Any]) -> None:
    """Make the control-flow objects say what a file writes, not how the classes hold it."""
    ids = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    branch = defs["BranchSpec"]["properties"]
    branch["cases"]["additionalProperties"] = ids
    branch["default"] = {**branch["default"], **ids}
    branch["default"].pop("type", None)
    branch["default"].pop("items", None)
    mapping = defs["MapSpec"]
    mapping["properties"].pop("range", None)
    mapping["properties"]["over"] = {
        "description": "`NODE`, `NODE.OUTPUT` or `inputs.NAME` holding a list, or `{range: N}`.",
        "oneOf": [
            {"type": "string", "minLength": 1},
            {
                "type": "object",
                "required": ["range"],
                "additionalProperties": False,
                "properties": {"range": {"type": "integer", "minimum": 0}},
            },
        ],
    }
    mapping["required"] = ["over", "node"]
    body = json.loads(json.dumps(node))
    body["properties"]["id"] = {
        "type": "string",
        "minLength": 1,
        "description": "unique in the body",
    }
    body["required"] = ["id"]
    defs["loop_node"] = body
    defs["LoopSpec"]["properties"]["body"]["items"] = {"$ref": "#/$defs/loop_node"}
    defs["LoopSpec"]["properties"]["body"]["minItems"] = 1


_CACHE_NODE = (
    "Reuse the result of a completed node of any run with the same runtime configuration, "
    "inputs (file contents included), listed `files` and `key`: `true`, `false` (off even "
    "when the workflow's `cache` is on) or `{key, ttl, files}` (see docs/caching.md)."
)
_CACHE_WORKFLOW = (
    "The `cache` of every task node that sets none (off when absent): `true` or "
    "`{key, ttl, files}`; a node's own `cache` overrides it, `cache: false` opts out."
)


def workflow_schema(registry: Registry | None = None) -> dict[str, Any]:
    """Return the JSON Schema of a workflow file, with every kind ``registry`` holds.

    Args:
        registry: the kinds to describe (the default registry if None). Every
            kind of the runtime, executor and effect groups is imported.

    Returns:
        A draft 2020-12 schema; ``$defs`` holds one entry per group (the union),
        per kind (``runtime.command``) and per shared object (``node``, ``retry``,
        ``output``, ``input``).
    """
    builder = SchemaBuilder(_registry(registry), WORKFLOW_GROUPS)
    for group in WORKFLOW_GROUPS:
        builder.group(group)
    node = builder.object_schema(NodeSpec)
    node["properties"]["inputs"] = {
        "type": "object",
        "description": "Parameter name to reference or literal.",
        "additionalProperties": {"$ref": "#/$defs/node_input"},
    }
    props = node["properties"]
    for key in ("runtime", "executor", "effect", "retry"):
        # null means "not set" in a file, but writing it is never needed
        described = {k: v for k, v in props[key].items() if k == "description"}
        props[key] = {"$ref": f"#/$defs/{key}", **described}
    props["timeout"] = {**props["timeout"], "type": "number", "exclusiveMinimum": 0}
    props["timeout"].pop("default", None)
    builder.defs["retry"]["properties"]["max_attempts"]["minimum"] = 1
    props["workflow"] = _WORKFLOW_NODE
    props["cache"] = {**CACHE_SCHEMA, "description": _CACHE_NODE}
    builder.defs.pop("CacheSpec", None)  # described by CACHE_SCHEMA instead
    node["oneOf"] = [
        {"required": [key]} for key in ("runtime", "effect", "workflow", "branch", "map", "loop")
    ]
    node["dependentRequired"] = {"executor": ["runtime"]}
    builder.defs["node_input"] = _NODE_INPUT
    _control_schemas(builder.defs, node)
    builder.object_schema(InputSpec)
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "spindle workflow",
        "description": "A named graph of nodes: each node a task (runtime + optional "
        "executor) or an effect.",
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "description": "The workflow's name."},
            "description": {"type": "string", "description": "What the workflow is for."},
            "inputs": {
                "type": "object",
                "description": "Workflow inputs: a default value each, or a mapping "
                "`{default, required, secret, description}` (see `input`).",
                "additionalProperties": {},
            },
            "nodes": {
                "type": "object",
                "description": "Node id to node. Ids cannot contain `.` or be `inputs`.",
                "minProperties": 1,
                "propertyNames": {"pattern": r"^[^.]+$", "not": {"const": "inputs"}},
                "additionalProperties": {"$ref": "#/$defs/node"},
            },
            "output": {
                "type": ["string", "object", "null"],
                "additionalProperties": {"type": "string", "minLength": 1},
                "minProperties": 1,
                "description": (
                    "Whose result is the run's output: `NODE` or `NODE.OUTPUT`, or a mapping "
                    "of name to such a reference (the output is then that mapping, filled in)."
                ),
            },
            "queue": {
                "description": (
                    "The queue runs started detached wait on for a worker: a name, or "
                    "`{name, priority, partition_by}` (higher priority first; "
                    "`partition_by` names the input whose value is the partition key)."
                ),
                "oneOf": [
                    {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"},
                    {
                        "type": "object",
                        "properties": {
                            "name": {
                                "type": "string",
                                "pattern": r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$",
                            },
                            "priority": {"type": "integer"},
                            "partition_by": {"type": "string"},
                        },
                        "required": ["name"],
                        "additionalProperties": False,
                    },
                ],
            },
            "max_steps": {
                "type": ["integer", "null"],
                "minimum": 1,
                "description": "Ledger records a run may write before it is failed.",
            },
            "schedule": SCHEDULE_SCHEMA,
            "cache": {**CACHE_SCHEMA, "description": _CACHE_WORKFLOW},
            "base_dir": {"type": ["string", "null"], "description": "Written by `to_dict()`."},
            "source": {"type": ["string", "null"], "description": "Written by `to_dict()`."},
            "node_hashes": {"type": "object", "description": "Written by `to_dict()`."},
        },
        "required": ["name", "nodes"],
        "additionalProperties": False,
        "$defs": dict(sorted(builder.defs.items())),
    }


def group_schema(registry: Registry | None, group: str) -> dict[str, Any]:
    """Return a self-contained schema of one group's union (``spindle schema --group``).

    Raises:
        ValueError: ``group`` is not one a workflow file configures.
    """
    if group not in WORKFLOW_GROUPS:
        raise ValueError(f"unknown group {group!r}; expected one of {', '.join(WORKFLOW_GROUPS)}")
    builder = SchemaBuilder(_registry(registry), WORKFLOW_GROUPS)
    union = builder.group(group)
    body = {k: v for k, v in union.items() if k != "description"}
    return {
        "$schema": SCHEMA_DIALECT,
        "title": f"spindle {group} kinds",
        "description": union.get("description", ""),
        **body,
        "$defs": _reachable(builder.defs, body),
    }


def kind_schema(registry: Registry | None, group: str, kind: str) -> dict[str, Any]:
    """Return the self-contained JSON Schema of one kind's options (``spindle plugins --markdown``).

    Any group's kind is described, not only those a workflow file configures:
    an attrs plugin class's fields are its options (type, default, required,
    and the description from its ``Attributes:`` docstring section); a kind
    that is not an attrs class (a CLI command, a hook module) gets an object
    schema with only ``kind`` and a ``$comment`` saying its options are unknown.

    Raises:
        PluginError: the kind is unknown or cannot be imported.
    """
    builder = SchemaBuilder(_registry(registry), WORKFLOW_GROUPS)
    schema = builder.kind_schema(builder.registry.get(group, kind), kind)
    defs = _reachable(builder.defs, schema)
    return {**schema, "$defs": defs} if defs else schema


def _registry(registry: Registry | None) -> Registry:
    if registry is not None:
        return registry
    from spindle.core.plugin import default_registry

    return default_registry()


def _reachable(defs: dict[str, Any], root: Any) -> dict[str, Any]:
    """The ``$defs`` entries ``root`` refers to, directly or through other entries."""
    seen: dict[str, Any] = {}
    pending = [root]
    while pending:
        for ref in re.findall(r'"\$ref": "#/\$defs/([^"]+)"', json.dumps(pending.pop())):
            if ref not in seen and ref in defs:
                seen[ref] = defs[ref]
                pending.append(defs[ref])
    return dict(sorted(seen.items()))
