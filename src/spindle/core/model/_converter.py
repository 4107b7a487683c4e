"""The one cattrs converter of the project.

It adds, on top of cattrs' defaults:

* aware-UTC datetimes as ISO-8601 strings (naive datetimes are refused, so no
  comparison ever mixes zones);
* strict scalars: a ``str`` field refuses ``3``, an ``int`` field refuses
  ``"3"`` and ``True`` — YAML's silent coercions are the classic source of
  "it ran with the wrong value";
* :func:`structure_errors`, which turns cattrs' nested errors into one
  ``"what was wrong @ path"`` line per problem.
"""

from __future__ import annotations

import enum
import types
from collections import abc
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import list_structure_factory, mapping_structure_factory
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationNote

from spindle.core._quote import quote
from spindle.core.errors import KindMissing, PluginError, SpindleError, ValidationError

__all__ = ["converter", "structure", "structure_errors", "unstructure"]

T = TypeVar("T")

converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)


def _type_name(t: Any) -> str:
    return getattr(t, "__name__", None) or repr(t)


# --- datetimes ---------------------------------------------------------------


def _structure_datetime(value: Any, _: type) -> datetime:
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"expected an ISO-8601 datetime, got {quote(value)}") from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    else:
        raise TypeError(f"expected a datetime, got {type(value).__name__} {quote(value)}")
    if dt.tzinfo is None:
        raise ValueError(
            f"expected a timezone-aware datetime, got naive {quote(value)}; "
            "add a UTC offset like +00:00"
        )
    return dt.astimezone(UTC)


def _unstructure_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError(
            f"refusing to serialize naive datetime {quote(value)}; use spindle.utcnow()"
        )
    return value.astimezone(UTC).isoformat()


converter.register_structure_hook(datetime, _structure_datetime)


converter.register_unstructure_hook(datetime, _unstructure_datetime)


# --- strict scalars ------------------------------------------------------------


# A hook registered for ``str`` (or ``int``) also receives its subclasses, such
# as StrEnum/IntEnum fields; those go to the enum hook. The identity test keeps
# the common case (a plain str field) to one comparison.


def _structure_str(value: Any, cl: type) -> Any:
    if cl is not str and issubclass(cl, enum.Enum):
        return _structure_enum(value, cl)
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a string, got {type(value).__name__} {quote(value)}")


def _structure_int(value: Any, cl: type) -> Any:
    if cl is not int and issubclass(cl, enum.Enum):
        return _structure_enum(value, cl)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError(f"expected an integer, got {type(value).__name__} {quote(value)}")


def _structure_float(value: Any, _: type) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"expected a number, got {type(value).__name__} {quote(value)}")


def _structure_bool(value: Any, _: type) -> bool:
    if isinstance(value, bool):
        return value
    raise TypeError(f"expected true or false, got {type(value).__name__} {quote(value)}")


def _structure_any(value: Any, _: Any) -> Any:
    return value


def _structure_enum(value: Any, cl: type[enum.Enum]) -> Any:
    if isinstance(value, cl):
        return value
    try:
        member = cl(value)
    except (ValueError, TypeError):
        member = None
    # the value's type must match too: a str enum refuses 1, an int enum "1" and True
    if member is not None and type(value) is type(member.value):
        return member
    options = ", ".join(repr(m.value) for m in cl)
    raise ValueError(f"expected one of {options}, got {quote(value)}")


converter.register_structure_hook(str, _structure_str)
converter.register_structure_hook(int, _structure_int)
converter.register_structure_hook(float, _structure_float)
converter.register_structure_hook(bool, _structure_bool)
for _enum_base in (enum.Enum, enum.StrEnum, enum.IntEnum):  # before str/int in their MRO
    converter.register_structure_hook(_enum_base, _structure_enum)
converter.register_structure_hook(Any, _structure_any)


# --- strict containers, literals and unions --------------------------------------
# cattrs happily iterates a string into a list (``choices: yes`` -> ['y', 'e', 's'])
# and fails on a list given for a mapping with an AttributeError; these hooks
# refuse the wrong shape up front with an "expected ..., got ..." message.

_SEQUENCE_ORIGINS: tuple[Any, ...] = (
    list,
    set,
    frozenset,
    abc.Sequence,
    abc.MutableSequence,
    abc.Set,
    abc.MutableSet,
)
_MAPPING_ORIGINS: tuple[Any, ...] = (dict, abc.Mapping, abc.MutableMapping)


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {quote(value)}"


def _is_homogeneous_collection(t: Any) -> bool:
    origin = get_origin(t) or t
    if origin is tuple:
        args = get_args(t)
        return not args or (len(args) == 2 and args[1] is Ellipsis)
    return origin in _SEQUENCE_ORIGINS


def _collection_factory(t: Any) -> Callable[[Any, Any], Any]:
    origin = get_origin(t) or t
    args = get_args(t)
    item = args[0] if args else Any
    inner = list_structure_factory(list[item], converter)  # type: ignore[valid-type]
    make: Callable[[list[Any]], Any]
    if origin in (set, abc.Set, abc.MutableSet):
        make, what = set, "a list"
    elif origin is frozenset:
        make, what = frozenset, "a list"
    elif origin is tuple:
        make, what = tuple, "a list"
    else:
        make, what = list, "a list"

    def structure(value: Any, _: Any) -> Any:
        if isinstance(value, str | bytes | abc.Mapping) or not isinstance(value, abc.Iterable):
            raise TypeError(f"expected {what}, got {_describe(value)}")
        return make(inner(value, list[item]))  # type: ignore[valid-type]

    return structure


def _is_plain_mapping(t: Any) -> bool:
    return (get_origin(t) or t) in _MAPPING_ORIGINS


def _mapping_factory(t: Any) -> Callable[[Any, Any], Any]:
    # Not converter.gen_structure_mapping: it also registers its bare hook for ``t``,
    # which wins over this wrapper once any later registration clears the dispatch
    # cache, and a list given for a mapping then ends in an AttributeError.
    origin = get_origin(t) or t
    inner = mapping_structure_factory(t, converter, dict if origin in _MAPPING_ORIGINS else origin)

    def structure(value: Any, cl: Any) -> Any:
        if not isinstance(value, abc.Mapping):
            raise TypeError(f"expected a mapping, got {_describe(value)}")
        return inner(value, cl)

    return structure


def _is_plain_attrs(t: Any) -> bool:
    # Plugin classes get the tagged-union hook of spindle.core.plugin, registered
    # later and so consulted first.
    return isinstance(t, type) and attrs.has(t)


def _attrs_factory(t: Any) -> Callable[[Any, Any], Any]:
    inner = converter.gen_structure_attrs_fromdict(t)

    def structure(value: Any, cl: Any) -> Any:
        if not isinstance(value, abc.Mapping):
            raise TypeError(f"expected a mapping of {t.__name__} fields, got {_describe(value)}")
        return inner(value, cl)

    return structure


def _is_literal(t: Any) -> bool:
    return get_origin(t) is Literal


def _structure_literal(value: Any, t: Any) -> Any:
    for choice in get_args(t):
        # ``1 == True`` in Python; a Literal of strings must not accept a bool
        if value == choice and type(value) is type(choice):
            return choice
    options = ", ".join(repr(a) for a in get_args(t))
    raise ValueError(f"expected one of {options}, got {quote(value)}")


def _is_union(t: Any) -> bool:
    # ``X | None`` stays with cattrs (fast, and X's hook is strict already);
    # unions of two or more types, which cattrs cannot structure, come here
    if get_origin(t) not in (Union, types.UnionType):
        return False
    return len([a for a in get_args(t) if a is not type(None)]) > 1


def _union_factory(t: Any) -> Callable[[Any, Any], Any]:
    arms = [a for a in get_args(t) if a is not type(None)]
    nullable = len(arms) != len(get_args(t))
    names = " or ".join(_arm_name(a) for a in arms) + (" or null" if nullable else "")

    single: Any = None

    def structure(value: Any, _: Any) -> Any:
        nonlocal single
        if value is None and nullable:
            return None
        if len(arms) == 1:
            # ``X | None``: the one real type's hook, resolved once, keeps its
            # detailed nested errors
            if single is None:
                single = converter.get_structure_hook(arms[0])
            return single(value, arms[0])
        for arm in arms:  # an exact scalar match wins over a lossless conversion
            if isinstance(arm, type) and type(value) is arm:
                return value
        for arm in arms:
            if arm is abc.Callable or get_origin(arm) is abc.Callable:
                if callable(value):
                    return value
                continue
            try:
                return converter.structure(value, arm)
            except Exception:  # try the next arm; all of them failing is reported below
                continue
        raise TypeError(f"expected {names}, got {_describe(value)}")

    return structure


def _arm_name(t: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    if t in names:
        return names[t]
    if _is_homogeneous_collection(t):
        return "a list"
    if _is_plain_mapping(t) or (isinstance(t, type) and attrs.has(t)):
        return "a mapping"
    return _type_name(t)


converter.register_structure_hook_factory(_is_homogeneous_collection, _collection_factory)
converter.register_structure_hook_factory(_is_plain_mapping, _mapping_factory)
converter.register_structure_hook_factory(_is_plain_attrs, _attrs_factory)
converter.register_structure_hook_func(_is_literal, _structure_literal)
converter.register_structure_hook_factory(_is_union, _union_factory)


# --- errors ------------------------------------------------------------------


def _known_fields(cl: Any) -> str:
    if cl is None or not attrs.has(cl):
        return ""
    names = [a.name for a in attrs.fields(cl) if a.init and not a.name.startswith("_")]
    if getattr(cl, "plugin_group", None):  # a plugin mapping also takes its 'kind'
        names.insert(0, "kind")
    return f"; known fields: {', '.join(names)}"


def _format_exception(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, SpindleError):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, TypeError | ValueError):
        msg = str(exc)
        if msg.startswith("expected"):
            return msg
        if type_ is not None:
            return f"expected {_type_name(type_)} ({msg})"
        return msg
    return f"{type(exc).__name__}: {exc}"


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}"


def _flatten(exc: BaseException, path: str, type_: Any, out: list[str]) -> None:
    if isinstance(exc, ClassValidationError | cattrs.IterableValidationError):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            key = note.index if isinstance(note, IterableValidationNote) else note.name
            _flatten(sub, _join(path, key), note.type, out)
        for sub in without:
            _flatten(sub, path, None, out)
    elif isinstance(exc, ForbiddenExtraKeysError):
        # one line per unknown key, at the key itself, so a file loader can
        # point at the line it is on
        known = _known_fields(getattr(exc, "cl", None))
        for name in sorted(exc.extra_fields):
            out.append(f"unknown field '{name}'{known} @ {_join(path, name)}")
    elif isinstance(exc, PluginError) and not isinstance(exc, KindMissing):
        # the kind named is what is wrong (unknown, broken or refused)
        out.append(f"{exc} @ {_join(path, 'kind')}")
    else:
        out.append(f"{_format_exception(exc, type_)} @ {path}")


def structure_errors(exc: BaseException, path: str = "$") -> list[str]:
    """Flatten a structuring error into ``"what was wrong @ path"`` lines.

    Paths are dotted (``nodes.hello.outputs.out.kind``, ``after.0``): a field
    name, mapping key or list index per step below ``path``. An unknown key
    gets a line of its own, at the key; an unknown or broken plugin kind is
    reported at ``PATH.kind``.

    Example: a ``command`` given as ``3`` under ``nodes.hello.runtime`` gives
    ``["expected a string, got int 3 @ nodes.hello.runtime.command"]``.
    """
    out: list[str] = []
    _flatten(exc, path, None, out)
    return out


def structure(data: Any, cls: type[T], *, path: str = "$", what: str = "value") -> T:
    """Structure ``data`` into ``cls``, raising :class:`ValidationError` listing every problem."""
    try:
        return converter.structure(data, cls)
    except (
        ClassValidationError,
        cattrs.IterableValidationError,
        TypeError,
        ValueError,
        KeyError,
        SpindleError,
    ) as exc:
        raise ValidationError(f"invalid {what}", structure_errors(exc, path)) from exc


def unstructure(obj: Any) -> Any:
    """Unstructure ``obj`` into JSON-ready data with the project converter."""
    return converter.unstructure(obj)
