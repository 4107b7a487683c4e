"""Turning Python annotations, attrs classes and plugin kinds into JSON Schema.

:class:`SchemaBuilder` converts one class or annotation at a time and
collects what they refer to in ``$defs``: each plugin group a workflow file
configures as the ``oneOf`` of its kinds, each kind and each shared attrs
class (``node``, ``retry``, ``output``, ``input``) once. The documents built
from it are in ``_schema``.
"""

from __future__ import annotations

import collections.abc as abc
import enum
import json
import types
import typing
from datetime import date, datetime, timedelta
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

import attrs

from spindle.core.errors import PluginError
from spindle.core.model import RetryPolicy, converter
from spindle.core.plugin import Plugin
from spindle.core.workflow._docstrings import attribute_docs, class_summary, markdown
from spindle.core.workflow._nodes import ArtifactSpec, InputSpec, NodeSpec

if TYPE_CHECKING:
    from spindle.core.plugin import Registry

__all__ = ["SchemaBuilder"]

_NAMES = {ArtifactSpec: "output", InputSpec: "input", RetryPolicy: "retry", NodeSpec: "node"}


class SchemaBuilder:
    """Collects ``$defs`` while converting plugin classes and attrs classes."""

    def __init__(self, registry: Registry, groups: tuple[str, ...]) -> None:
        self.registry = registry
        # The plugin groups a field may name as a $ref to their union; any other
        # group's plugin is described as an opaque object.
        self.groups = groups
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
        description = markdown(getattr(cls, "kind_description", "") or class_summary(cls))
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
        summary = markdown(class_summary(cls))
        if summary:
            schema["description"] = summary
        schema.update(self._fields(cls, skip={"id"} if cls is NodeSpec else set()))
        self.defs[name] = schema
        return schema

    def _fields(self, cls: Any, skip: set[str] | None = None) -> dict[str, Any]:
        hints = _hints(cls)
        docs = attribute_docs(cls)
        props: dict[str, Any] = {}
        required: list[str] = []
        for a in attrs.fields(cls):
            if not a.init or a.name.startswith("_") or a.name in (skip or set()):
                continue
            prop = dict(self.type_schema(hints.get(a.name, a.type)))
            description = a.metadata.get("description") or docs.get(a.name)
            if description:
                prop["description"] = markdown(str(description))
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
            if plugin.plugin_group in self.groups:
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


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
