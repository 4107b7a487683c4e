"""Importing one entry point and checking what it gives, and the errors that say why not.

Every failure is a :class:`~spindle.core.errors.PluginLoadError` naming the
kind, the entry point, the distribution and the cause, so a broken plugin
is reported where it is used and never breaks the others.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from spindle.core.errors import PluginLoadError, UnknownKindError
from spindle.core.plugin._discovery import EntryPointInfo
from spindle.core.plugin._plugin import BASE_NAMES, Plugin

__all__ = [
    "KIND_HINTS",
    "description",
    "duplicate_error",
    "load_entry_point",
    "qualname",
    "shape_problem",
    "unknown_kind",
]

#: What to say about a kind the design names but that is not installed: the
#: kinds of spindle's planned contrib integrations, which this version does not
#: ship yet (no extra installs them). When one lands behind an extra, its hint
#: becomes the ``pip install 'spindle[EXTRA]'`` line that adds it.
KIND_HINTS: dict[tuple[str, str], str] = {
    ("store", "postgres"): (
        "The PostgreSQL store comes with the 'postgres' extra: pip install 'spindle[postgres]'."
    ),
    ("executor", "dask"): (
        "The Dask executor comes with the 'dask' extra: pip install 'spindle[dask]'."
    ),
    ("observer", "otel"): (
        "The OpenTelemetry observer is not available yet in this version of spindle; "
        "use the log or jsonl observer."
    ),
}
KIND_HINTS[("store", "postgresql")] = KIND_HINTS[("store", "postgres")]


def load_entry_point(ep: EntryPointInfo) -> Any:
    """Import the object ``ep`` names and check it belongs in its group.

    Raises:
        PluginLoadError: the import failed, or the object is not a kind of the group.
    """
    where = f"entry point {ep.spec} from {ep.distribution} {ep.version}"
    module_name, _, attr = ep.value.partition(":")
    try:
        obj: Any = importlib.import_module(module_name.strip())
        for part in attr.strip().split(".") if attr.strip() else []:
            obj = getattr(obj, part)
    except Exception as exc:
        failed = (
            f"failed to import ({type(exc).__name__}: {exc}). Fix or uninstall {ep.distribution}."
        )
        raise PluginLoadError(
            f"{ep.group} '{ep.kind}' cannot be loaded: {where} {failed}",
            group=ep.group,
            kind=ep.kind,
            distribution=ep.distribution,
            value=ep.value,
            version=ep.version,
            reason=f"it {failed}",
        ) from exc
    problem = shape_problem(ep.group, obj)
    if (
        problem is None
        and isinstance(obj, type)
        and issubclass(obj, Plugin)
        and obj.kind_name
        and obj.kind_name != ep.kind
    ):
        problem = (
            f"the class declares kind '{obj.kind_name}' but the entry point is named '{ep.kind}'"
        )
    if problem:
        stop = "" if problem.endswith((".", "?")) else "."
        raise PluginLoadError(
            f"{ep.group} '{ep.kind}' cannot be loaded: {where}: {problem}{stop}",
            group=ep.group,
            kind=ep.kind,
            distribution=ep.distribution,
            value=ep.value,
            version=ep.version,
            reason=problem,
        )
    return obj


def shape_problem(group: str, obj: Any) -> str | None:
    """Why ``obj`` cannot be a kind of ``group``, or None when it can.

    Class-based groups need a subclass of the group's base. The base is looked
    up where it recorded itself, never imported: an object that subclasses it
    has imported it already. A hook module must pass
    :func:`~spindle.core.plugin._hooks.hook_problems` (each ``@hookimpl`` a
    known hook, accepted by pluggy).
    """
    if group in BASE_NAMES and group != "observer":
        base = Plugin.group_base(group)
        if base is None or not (isinstance(obj, type) and issubclass(obj, base)):
            return f"{qualname(obj)} is not a subclass of spindle.{BASE_NAMES[group]}"
        return None
    if group == "observer" and not callable(getattr(obj, "on_event", None)):
        return f"{qualname(obj)} has no 'async on_event(event)' method (RunObserver)"
    if group == "cli":
        # A click command's module imported click, so it is in sys.modules;
        # the registry itself never imports click.
        click = sys.modules.get("click")
        if click is None or not isinstance(obj, click.Command):
            return f"{qualname(obj)} is not a click command"
    if group == "hooks":
        # Imported here: pluggy is needed only once a hook module is loaded,
        # never to list kinds.
        from spindle.core.plugin._hooks import hook_problems

        problems = hook_problems(obj)
        return "; ".join(problems) if problems else None
    return None


def duplicate_error(
    group: str, kind: str, eps: list[EntryPointInfo], wanted: str | None = None
) -> PluginLoadError:
    """The error for a kind that several distributions provide and nothing chose between."""
    who = "; ".join(f"{e.distribution} {e.version} ({e.spec})" for e in eps)
    stale = f" plugins.prefer names '{wanted}', which does not provide it." if wanted else ""
    return PluginLoadError(
        f"{group} '{kind}' is provided by more than one distribution: {who}.{stale} "
        f"Spindle never picks one silently: choose in spindle.toml with "
        f'[plugins.prefer] "{group}.{kind}" = "{eps[0].distribution}", '
        f"or uninstall all but one.",
        group=group,
        kind=kind,
        distribution=", ".join(e.distribution for e in eps),
        value=", ".join(e.value for e in eps),
    )


def unknown_kind(group: str, kind: str, installed: list[str]) -> UnknownKindError:
    """The error for a kind nothing installed provides, listing what is installed."""
    names = ", ".join(installed) or "(none)"
    hint = KIND_HINTS.get((group, kind))
    hint = f" {hint}" if hint else ""
    return UnknownKindError(
        f"unknown {group} kind '{kind}'; installed {group} kinds: {names}.{hint}",
        group=group,
        kind=kind,
    )


def qualname(obj: Any) -> str:
    """``module:qualname`` of a class, function or object."""
    mod = getattr(obj, "__module__", None) or type(obj).__module__
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{mod}:{name}"


def description(obj: Any) -> str:
    """A kind's one-line description: ``kind_description``, else its docstring's first line."""
    desc = getattr(obj, "kind_description", "") or ""
    if not desc:
        doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
        desc = doc[0] if doc else ""
    return str(desc)
