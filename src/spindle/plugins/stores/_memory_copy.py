"""How the memory store copies what goes in and what comes out.

The store's isolation rests on these two functions: :func:`clone` copies
containers deeply and attrs objects field by field (objects that are neither
are shared), :func:`json_copy` sends user data through JSON as a durable
store would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import attrs

from spindle.plugins.stores._common import to_json

__all__ = ["clone", "cloner", "json_copy"]

T = TypeVar("T")

_Cloner = Callable[[Any], Any]
_CLONERS: dict[type, _Cloner | None] = {}


def clone(value: T) -> T:
    """Copy ``value``: dicts and lists deeply, attrs objects field by field."""
    return _copy(value)  # type: ignore[no-any-return]


def cloner(cls: type[T]) -> Callable[[T], T]:
    """The copy function :func:`clone` uses for instances of ``cls`` (an attrs class),
    for a caller that copies many of them without dispatching on each."""
    made = _CLONERS.get(cls)
    if made is None:
        made = _CLONERS[cls] = _make_cloner(cls)
    if made is None:
        raise TypeError(f"{cls.__name__} is not an attrs class")
    return made


def _copy(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {k: _copy(v) for k, v in value.items()}
    if kind is list:
        return [_copy(v) for v in value]
    try:
        cloner = _CLONERS[kind]
    except KeyError:
        cloner = _CLONERS[kind] = _make_cloner(kind)
    return value if cloner is None else cloner(value)


_IMMUTABLE = (str, int, float, bool, bytes, datetime, type(None))


def _immutable(annotation: Any) -> bool:
    """Whether values of this (resolved) field type never need copying."""
    import enum
    import types
    import typing

    if isinstance(annotation, type):
        return issubclass(annotation, _IMMUTABLE) or issubclass(annotation, enum.Enum)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return all(_immutable(a) for a in typing.get_args(annotation))
    return False


def _make_cloner(cls: type) -> _Cloner | None:
    # Generated per class, as attrs and cattrs generate theirs: a straight-line
    # copy is several times faster than ``copy.copy`` on slotted classes, and
    # the memory store copies on every commit. ``object.__setattr__`` also
    # fills frozen classes; ``__init__`` is skipped, so validators do not rerun.
    # Fields typed as immutable values (strings, numbers, datetimes, enums) are
    # shared, not copied: only containers and Any-typed data are cloned.
    if not attrs.has(cls):
        return None
    try:
        attrs.resolve_types(cls)
    except Exception:  # unresolvable annotations: copy every field, to be safe
        fixed: set[str] = set()
    else:
        fixed = {a.name for a in attrs.fields(cls) if _immutable(a.type)}
    # A class that is not frozen is filled by plain attribute stores, several times
    # faster than ``object.__setattr__`` calls; a value of an immutable type in an
    # Any field (a None result, a string) is shared without a call.
    frozen = cls.__setattr__ is not object.__setattr__
    lines = ["def clone(obj):", "    new = _new(_cls)"]
    for a in attrs.fields(cls):
        value = f"obj.{a.name}"
        if a.name not in fixed:
            lines.append(f"    v = {value}")
            value = "v if type(v) in _SHARED else _clone(v)"
        lines.append(
            f"    _set(new, {a.name!r}, {value})" if frozen else f"    new.{a.name} = {value}"
        )
    lines.append("    return new")
    namespace: dict[str, Any] = {
        "_new": object.__new__,
        "_set": object.__setattr__,
        "_cls": cls,
        "_clone": _copy,
        "_SHARED": frozenset(_IMMUTABLE),
    }
    # The source is built from attrs field names only, never from data.
    exec("\n".join(lines), namespace)
    return namespace["clone"]  # type: ignore[no-any-return]


def json_copy(value: Any, what: str) -> Any:
    """Copy user data through JSON text (``what`` names it in a ``StoreError``)."""
    # Payloads and definitions go through JSON, as they do in the durable
    # stores, so a test on the memory store sees the same data a user of the
    # SQLite store would (tuples become lists, datetimes strings).
    return json.loads(to_json(value, what))
