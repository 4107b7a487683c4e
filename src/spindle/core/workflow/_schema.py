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
"""

from __future__ import annotations

import collections.abc as abc
import enum
import inspect
import json
import re
import types
import typing
from datetime import date, datetime, timedelta
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

import attrs

from spindle.core.errors import PluginError
from spindle.core.model import converter
from spindle.core.plugin import Plugin
from spindle.core.workflow._nodes import ArtifactSpec, InputSpec, NodeSpec, RetryPolicy

if TYPE_CHECKING:
    from spindle.core.plugin import Registry

__all__ = ["SCHEMA_DIALECT", "WORKFLOW_GROUPS", "group_schema", "workflow_schema"]

#: The JSON Schema dialect of every schema this module builds.
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

#: The plugin groups a workflow file configures, in the order they are listed.
WORKFLOW_GROUPS: tuple[str, ...] = ("runtime", "executor", "effect")

_NAMES = {ArtifactSpec: "output", InputSpec: "input", RetryPolicy: "retry", NodeSpec: "node"}

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
    builder = _Builder(_registry(registry))
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
    node["oneOf"] = [{"required": ["runtime"]}, {"required": ["effect"]}]
    node["dependentRequired"] = {"executor": ["runtime"]}
    builder.defs["node_input"] = _NODE_INPUT
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
                "type": ["string", "null"],
                "description": "Whose result is the run's output: `NODE` or `NODE.OUTPUT`.",
            },
            "max_steps": {
                "type": ["integer", "null"],
                "minimum": 1,
                "description": "Ledger records a run may write before it is failed.",
            },
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
    builder = _Builder(_registry(registry))
    union = builder.group(group)
    body = {k: v for k, v in union.items() if k != "description"}
    return {
        "$schema": SCHEMA_DIALECT,
        "title": f"spindle {group} kinds",
        "description": union.get("description", ""),
        **body,
        "$defs": _reachable(builder.defs, body),
    }


def _registry(registry: Registry | None) -> Registry:
    if registry is not None:
        return registry
    from spindle.core.plugin import default_registry

    return default_registry()


class _Builder:
    """Collects ``$defs`` while converting plugin classes and attrs classes."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.defs: dict[str, Any] = {}

    def group(self, group: str) -> dict[str, Any]:
        """Add ``$defs[group]`` (the ``oneOf`` of its kinds) and each kind's def."""
        if group in self.defs:
            return dict(self.defs[group])
        self.defs[group] = {}  # placeholder: a kind may refer back to its own group
        refs: list[dict[str, str]] = []
        left_out: list[str] = []
        for kind in self.registry.names(group):
            try:
                cls = self.registry.get(group, kind)
                schema = self.kind_schema(cls, kind)
            except PluginError as exc:
                left_out.append(f"{group} '{kind}' left out: {exc}")
                continue
            except Exception as exc:  # a plugin's odd annotations must not sink the schema
                left_out.append(f"{group} '{kind}' left out: {type(exc).__name__}: {exc}")
                continue
            self.defs[f"{group}.{kind}"] = schema
            refs.append({"$ref": f"#/$defs/{group}.{kind}"})
        names = ", ".join(f"`{r['$ref'].rsplit('.', 1)[1]}`" for r in refs)
        article = "An" if group[0] in "aeiou" else "A"
        union: dict[str, Any] = {
            "description": f"{article} {group}: `kind` picks one of {names or '(none installed)'}."
        }
        union["oneOf"] = refs if refs else [{"not": {}}]
        if left_out:
            union["$comment"] = "; ".join(left_out)
        self.defs[group] = union
        return dict(union)

    def kind_schema(self, cls: Any, kind: str) -> dict[str, Any]:
        """The object schema of one plugin kind: ``kind`` const plus its fields."""
        if not (isinstance(cls, type) and attrs.has(cls)):
            return {
                "type": "object",
                "title": kind,
                "properties": {"kind": {"const": kind}},
                "required": ["kind"],
                "$comment": f"{_qualname(cls)} is not an attrs class; its options are unknown",
            }
        schema = self._fields(cls)
        schema["properties"] = {"kind": {"const": kind}, **schema["properties"]}
        schema["required"] = ["kind", *schema.get("required", [])]
        description = _markdown(getattr(cls, "kind_description", "") or _summary(cls))
        out: dict[str, Any] = {"type": "object", "title": kind}
        if description:
            out["description"] = description
        out.update(schema)
        out["$comment"] = _qualname(cls)
        return out

    def object_schema(self, cls: type) -> dict[str, Any]:
        """Add ``$defs[name]`` for an attrs class (once) and return it."""
        name = _NAMES.get(cls, cls.__name__)
        if name in self.defs:
            existing: dict[str, Any] = self.defs[name]
            return existing
        self.defs[name] = {}  # placeholder for recursive classes
        schema: dict[str, Any] = {"type": "object"}
        summary = _markdown(_summary(cls))
        if summary:
            schema["description"] = summary
        schema.update(self._fields(cls, skip={"id"} if cls is NodeSpec else set()))
        self.defs[name] = schema
        return schema

    def _fields(self, cls: Any, skip: set[str] | None = None) -> dict[str, Any]:
        hints = _hints(cls)
        docs = _attribute_docs(cls)
        props: dict[str, Any] = {}
        required: list[str] = []
        for a in attrs.fields(cls):
            if not a.init or a.name.startswith("_") or a.name in (skip or set()):
                continue
            prop = dict(self.type_schema(hints.get(a.name, a.type)))
            description = a.metadata.get("description") or docs.get(a.name)
            if description:
                prop["description"] = _markdown(str(description))
            if a.default is attrs.NOTHING:
                required.append(a.name)
            else:
                found, default = _default(a.default)
                if found:
                    prop["default"] = default
            props[a.name] = prop
        out: dict[str, Any] = {"properties": props, "additionalProperties": False}
        if required:
            out["required"] = required
        return out

    def type_schema(self, t: Any) -> dict[str, Any]:
        """Map a Python annotation to a JSON Schema fragment."""
        if isinstance(t, str):
            return {"$comment": f"unresolved annotation {t!r}"}
        if t is Any or t is object:
            return {}
        if t is None or t is type(None):
            return {"type": "null"}
        simple = _SIMPLE.get(t)
        if simple is not None:
            return dict(simple)
        origin = get_origin(t)
        args = get_args(t)
        if origin is typing.Annotated:
            return self.type_schema(args[0])
        if origin is Literal:
            return {"const": args[0]} if len(args) == 1 else {"enum": list(args)}
        if origin in (Union, types.UnionType):
            return self._union(args)
        if isinstance(t, type) and issubclass(t, enum.Enum):
            return {"enum": [m.value for m in t]}
        if isinstance(t, type) and issubclass(t, PurePath):
            return {"type": "string"}
        if _is_callable(t):
            return {"$comment": "a Python callable: set it from Python, not in a file"}
        container = origin or t
        if container in (
            list,
            set,
            frozenset,
            abc.Sequence,
            abc.MutableSequence,
            abc.Set,
            abc.MutableSet,
            abc.Iterable,
            abc.Collection,
        ):
            out: dict[str, Any] = {"type": "array"}
            if args:
                out["items"] = self.type_schema(args[0])
            if container in (set, frozenset, abc.Set, abc.MutableSet):
                out["uniqueItems"] = True
            return out
        if container is tuple:
            if not args or (len(args) == 2 and args[1] is Ellipsis):
                return {"type": "array", **({"items": self.type_schema(args[0])} if args else {})}
            items = [self.type_schema(a) for a in args]
            return {
                "type": "array",
                "prefixItems": items,
                "items": False,
                "minItems": len(items),
                "maxItems": len(items),
            }
        if container in (dict, abc.Mapping, abc.MutableMapping):
            out = {"type": "object"}
            if len(args) == 2:
                out["additionalProperties"] = self.type_schema(args[1])
            return out
        plugin = (
            container if isinstance(container, type) and issubclass(container, Plugin) else None
        )
        if plugin is not None:
            if plugin.plugin_group in WORKFLOW_GROUPS:
                self.group(plugin.plugin_group)
                return {"$ref": f"#/$defs/{plugin.plugin_group}"}
            return {"type": "object", "$comment": f"a {plugin.plugin_group} configuration"}
        if isinstance(t, type) and attrs.has(t):
            self.object_schema(t)
            return {"$ref": f"#/$defs/{_NAMES.get(t, t.__name__)}"}
        return {"$comment": f"Python type {_qualname(t)}"}

    def _union(self, args: tuple[Any, ...]) -> dict[str, Any]:
        # a callable cannot be written in a file, so it is no option there
        arms = [self.type_schema(a) for a in args if not _is_callable(a)]
        if not arms:
            return {"$comment": "a Python callable: set it from Python, not in a file"}
        if any(arm == {} for arm in arms):
            return {}
        if len(arms) == 1:
            return arms[0]
        if all(set(arm) == {"type"} and isinstance(arm["type"], str) for arm in arms):
            return {"type": [arm["type"] for arm in arms]}
        return {"anyOf": arms}


_SIMPLE: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    bool: {"type": "boolean"},
    int: {"type": "integer"},
    float: {"type": "number"},
    datetime: {"type": "string", "format": "date-time"},
    date: {"type": "string", "format": "date"},
    timedelta: {"type": "number", "description": "seconds"},
    bytes: {"type": "string"},
}


def _is_callable(t: Any) -> bool:
    return t is abc.Callable or get_origin(t) is abc.Callable or t is typing.Callable


def _hints(cls: type) -> dict[str, Any]:
    """Resolved field annotations (``from __future__ import annotations`` leaves strings)."""
    try:
        return typing.get_type_hints(cls)
    except Exception:  # unresolvable names: each field falls back to its raw annotation
        return {}


def _default(value: Any) -> tuple[bool, Any]:
    """Return (True, JSON value) for a default a schema can show, else (False, None)."""
    if isinstance(value, attrs.Factory):  # type: ignore[arg-type]
        if value.takes_self:
            return False, None
        try:
            value = value.factory()
        except Exception:  # a factory with side effects or arguments: show no default
            return False, None
    try:
        data = converter.unstructure(value)
        json.dumps(data)
    except (TypeError, ValueError):
        return False, None
    return True, data


def _summary(cls: Any) -> str:
    """The first paragraph of a class docstring, on one line."""
    doc = inspect.getdoc(cls) or ""
    if not cls.__dict__.get("__doc__"):
        return ""  # inherited docstrings describe the base, not this class
    return " ".join(doc.split("\n\n", 1)[0].split())


def _markdown(text: str) -> str:
    """Turn reST double-backtick literals into the single backticks editors and Markdown show."""
    return re.sub(r"``(.+?)``", r"`\1`", text)


_SECTION = re.compile(r"^(Attributes|Args|Options|Fields):\s*$")
_ENTRY = re.compile(r"^(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")


def _attribute_docs(cls: Any) -> dict[str, str]:
    """Field descriptions from Google-style ``Attributes:`` sections along the MRO."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        doc = klass.__dict__.get("__doc__")
        if isinstance(doc, str):
            out.update(_parse_attributes(inspect.cleandoc(doc)))
    return out


def _parse_attributes(doc: str) -> dict[str, str]:
    out: dict[str, str] = {}
    in_section = False
    current: str | None = None
    entry_indent = -1
    for line in doc.splitlines():
        if _SECTION.match(line.strip()) and not line.startswith(" "):
            in_section, current, entry_indent = True, None, -1
            continue
        if not in_section:
            continue
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            in_section, current = False, None
            continue
        match = _ENTRY.match(line.strip())
        if match and (entry_indent < 0 or indent <= entry_indent):
            entry_indent = indent
            current = match.group(1)
            out[current] = match.group(2).strip()
        elif current is not None:
            out[current] = f"{out[current]} {line.strip()}".strip()
    return out


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


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
