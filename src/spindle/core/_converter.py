"""The one cattrs converter of the project.

It adds, on top of cattrs' defaults:

* aware-UTC datetimes as ISO-8601 strings (naive datetimes are refused, so no
  comparison ever mixes zones);
* strict scalars: a ``str`` field refuses ``3``, an ``int`` field refuses
  ``"3"`` and ``True`` — YAML's silent coercions are the classic source of
  "it ran with the wrong value";
* a tagged union per plugin group: structuring into a group base
  (``Runtime``) reads ``kind`` and structures into the registered class,
  looked up in the *active* registry (:func:`using_registry`);
* :func:`structure_errors`, which turns cattrs' nested errors into one
  ``"what was wrong @ path"`` line per problem.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError
from cattrs.gen import make_dict_structure_fn

from spindle.core._plugin import Plugin
from spindle.core.errors import PluginError, SpindleError, ValidationError

if TYPE_CHECKING:
    from spindle.core._registry import Registry

__all__ = [
    "converter",
    "structure",
    "structure_errors",
    "structure_plugin",
    "unstructure",
    "using_registry",
]

T = TypeVar("T")

_active_registry: contextvars.ContextVar[Registry | None] = contextvars.ContextVar(
    "spindle_registry", default=None
)

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
            raise ValueError(f"expected an ISO-8601 datetime, got {value!r}") from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    else:
        raise TypeError(f"expected a datetime, got {type(value).__name__} {value!r}")
    if dt.tzinfo is None:
        raise ValueError(
            f"expected a timezone-aware datetime, got naive {value!r}; add a UTC offset like +00:00"
        )
    return dt.astimezone(UTC)


def _unstructure_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError(f"refusing to serialize naive datetime {value!r}; use spindle.utcnow()")
    return value.astimezone(UTC).isoformat()


converter.register_structure_hook(datetime, _structure_datetime)
converter.register_unstructure_hook(datetime, _unstructure_datetime)


# --- strict scalars ------------------------------------------------------------


def _structure_str(value: Any, _: type) -> str:
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a string, got {type(value).__name__} {value!r}")


def _structure_int(value: Any, _: type) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError(f"expected an integer, got {type(value).__name__} {value!r}")


def _structure_float(value: Any, _: type) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"expected a number, got {type(value).__name__} {value!r}")


def _structure_bool(value: Any, _: type) -> bool:
    if isinstance(value, bool):
        return value
    raise TypeError(f"expected true or false, got {type(value).__name__} {value!r}")


def _structure_any(value: Any, _: Any) -> Any:
    return value


converter.register_structure_hook(str, _structure_str)
converter.register_structure_hook(int, _structure_int)
converter.register_structure_hook(float, _structure_float)
converter.register_structure_hook(bool, _structure_bool)
converter.register_structure_hook(Any, _structure_any)  # type: ignore[arg-type]


# --- plugins: a tagged union per group ---------------------------------------------


@contextlib.contextmanager
def using_registry(registry: Registry) -> Iterator[Registry]:
    """Make ``registry`` the one plugin unions resolve kinds against, in this context."""
    token = _active_registry.set(registry)
    try:
        yield registry
    finally:
        _active_registry.reset(token)


def active_registry() -> Registry:
    """Return the registry in force: the one set by :func:`using_registry`, else the default."""
    registry = _active_registry.get()
    if registry is None:
        from spindle.core._registry import default_registry

        registry = default_registry()
    return registry


_concrete_fns: dict[type, Any] = {}


def _structure_concrete(data: Any, cls: type[Plugin]) -> Any:
    if not isinstance(data, dict):
        raise TypeError(
            f"expected a mapping of {cls.plugin_group} '{cls.kind_name}' options, "
            f"got {type(data).__name__} {data!r}"
        )
    fn = _concrete_fns.get(cls)
    if fn is None:
        fn = make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True)
        _concrete_fns[cls] = fn
    body = {k: v for k, v in data.items() if k != "kind"}
    return fn(body, cls)


def _structure_plugin_hook(data: Any, cls: type[Plugin]) -> Any:
    if not cls.is_group_base():
        return _structure_concrete(data, cls)
    if not isinstance(data, dict):
        raise TypeError(
            f"expected a mapping with 'kind', got {type(data).__name__} {data!r}"
        )
    kind = data.get("kind")
    if not isinstance(kind, str):
        raise KindMissing(cls.plugin_group)
    concrete = active_registry().get(cls.plugin_group, kind)
    return _structure_concrete(data, concrete)


class KindMissing(SpindleError, KeyError):
    """A plugin mapping has no ``kind`` key."""

    def __init__(self, group: str) -> None:
        super().__init__(f"missing 'kind': say which {group} to use")

    def __str__(self) -> str:
        return str(self.args[0])


converter.register_structure_hook_func(
    lambda t: isinstance(t, type) and issubclass(t, Plugin), _structure_plugin_hook
)


def _unstructure_plugin(obj: Plugin) -> dict[str, Any]:
    import attrs

    body: dict[str, Any] = {"kind": obj.kind_name}
    if attrs.has(type(obj)):
        for a in attrs.fields(type(obj)):
            if a.init and not a.name.startswith("_"):
                body[a.name] = converter.unstructure(getattr(obj, a.name))
    return body


converter.register_unstructure_hook_func(
    lambda t: isinstance(t, type) and issubclass(t, Plugin), _unstructure_plugin
)


# --- errors ------------------------------------------------------------------


def _format_exception(exc: BaseException, type_: type | None) -> str:
    if isinstance(exc, ForbiddenExtraKeysError):
        fields = ", ".join(sorted(exc.extra_fields))
        known = ""
        cl = getattr(exc, "cl", None)
        if cl is not None:
            import attrs

            if attrs.has(cl):
                names = [a.name for a in attrs.fields(cl) if a.init and not a.name.startswith("_")]
                known = f"; known fields: {', '.join(names) or '(none)'}"
        return f"unknown field(s) {fields}{known}"
    if isinstance(exc, SpindleError | PluginError):
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


def structure_errors(exc: BaseException, path: str = "$") -> list[str]:
    """Flatten a structuring error into ``"what was wrong @ path"`` lines."""
    if isinstance(exc, ClassValidationError | cattrs.IterableValidationError):
        return cattrs.transform_error(exc, path=path, format_exception=_format_exception)
    return [f"{_format_exception(exc, None)} @ {path}"]


def structure(data: Any, cls: type[T], *, path: str = "$", what: str = "value") -> T:
    """Structure ``data`` into ``cls``, raising :class:`ValidationError` listing every problem."""
    try:
        return converter.structure(data, cls)
    except (ClassValidationError, cattrs.IterableValidationError, TypeError, ValueError,
            KeyError, SpindleError) as exc:
        raise ValidationError(f"invalid {what}", structure_errors(exc, path)) from exc


def structure_plugin(group: str, data: Any, registry: Registry, *, path: str = "$") -> Plugin:
    """Structure a ``{"kind": ..., **options}`` mapping into the group's plugin class."""
    base = registry.base(group)
    with using_registry(registry):
        return structure(data, base, path=path, what=f"{group} configuration")


def unstructure(obj: Any) -> Any:
    """Unstructure ``obj`` into JSON-ready data with the project converter."""
    return converter.unstructure(obj)
