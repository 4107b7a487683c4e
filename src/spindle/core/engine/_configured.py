"""The observers and middleware named in the settings, built with every problem reported.

``[[observers]]`` and ``[[middleware]]`` entries are plain tables until the
engine builds them, long after the settings were read. A wrong option, an
unknown kind or a refused one is reported here for every entry at once, each
problem with the file and line it was written on, the table and its index
(``[[observers]] #2``) and the kind it names, so one edit fixes them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from spindle.core.config import Settings
from spindle.core.errors import ConfigError, SpindleError, ValidationError
from spindle.core.plugin import Middleware, ObserverBinding, Registry, ensure_observer

__all__ = ["configured_plugins"]

T = TypeVar("T")


def configured_plugins(
    settings: Settings, registry: Registry
) -> tuple[list[ObserverBinding], list[Middleware]]:
    """The observers and the middleware the settings name, each list in order.

    Raises:
        ConfigError: one or more entries of either table are wrong; every
            problem of both is listed, each with where it was written.
    """
    bindings, problems = _observers(settings, registry)
    layers, more = _middleware(settings, registry)
    problems += more
    if problems:
        raise ConfigError(
            f"invalid plugin settings ({len(problems)} "
            f"problem{'s' if len(problems) > 1 else ''}):\n  - " + "\n  - ".join(problems)
        )
    return bindings, layers


def _observers(settings: Settings, registry: Registry) -> tuple[list[ObserverBinding], list[str]]:
    """Bind each ``observers`` entry: a ``kind``, its options, and ``required``
    (a failure of a required observer propagates to the run)."""

    def build(options: dict[str, Any], path: str) -> ObserverBinding:
        required = options.pop("required", False)
        if not isinstance(required, bool):
            raise ValidationError(
                "invalid observer configuration",
                [f"required must be true or false, got {required!r} @ {path}.required"],
            )
        kind = options.get("kind")
        found = registry.get("observer", kind) if isinstance(kind, str) else None
        if found is None or hasattr(found, "__attrs_attrs__") or isinstance(found, type):
            instance = registry.create("observer", options, path=path)
        else:  # a plain function registered as a kind takes its options as arguments
            try:
                instance = found(**{k: v for k, v in options.items() if k != "kind"})
            except TypeError as exc:
                raise ValidationError(
                    "invalid observer configuration", [f"{exc} @ {path}"]
                ) from exc
        return ObserverBinding(ensure_observer(instance), required)

    return _build_all(settings, "observers", settings.observers, build)


def _middleware(settings: Settings, registry: Registry) -> tuple[list[Middleware], list[str]]:

    def build(options: dict[str, Any], path: str) -> Middleware:
        layer: Middleware = registry.create("middleware", options, path=path)
        return layer

    return _build_all(settings, "middleware", settings.middleware, build)


def _build_all(
    settings: Settings,
    table: str,
    entries: Iterable[Mapping[str, Any]],
    build: Callable[[dict[str, Any], str], T],
) -> tuple[list[T], list[str]]:
    built: list[T] = []
    problems: list[str] = []
    for index, entry in enumerate(entries):
        kind = entry.get("kind")
        label = f"[[{table}]] #{index + 1}" + (f" (kind {kind!r})" if kind is not None else "")
        try:
            built.append(build(dict(entry), f"{table}.{index}"))
        except ValidationError as exc:
            for problem in exc.problems or [exc.summary]:
                message, _, at = problem.rpartition(" @ ")
                if not message:
                    message, at = problem, f"{table}.{index}"
                where = settings.where(*at.split("."))
                problems.append(f"{where}: {label}: {message} @ {_shown(at)}")
        except SpindleError as exc:
            where = settings.where(table, str(index), "kind")
            problems.append(f"{where}: {label}: {exc} @ {table}[{index}].kind")
    return built, problems


def _shown(path: str) -> str:
    """``observers.1.path`` as ``observers[1].path``."""
    table, _, rest = path.partition(".")
    index, _, tail = rest.partition(".")
    if not index.isdigit():
        return path
    return f"{table}[{index}]" + (f".{tail}" if tail else "")
