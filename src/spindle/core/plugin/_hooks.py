"""Build the pluggy plugin manager from entry points, config and code."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pluggy

from spindle.core.errors import PluginLoadError
from spindle.core.plugin import hookspecs

if TYPE_CHECKING:
    from spindle.core.plugin._registry import Registry

__all__ = ["make_plugin_manager"]


def make_plugin_manager(
    *,
    registry: Registry | None = None,
    modules: Iterable[str] = (),
    plugins: Iterable[Any] = (),
    entry_points: bool = True,
) -> pluggy.PluginManager:
    """Return a plugin manager with spindle's hookspecs and every hook implementation.

    Sources, in registration order: the ``spindle.hooks`` entry points of
    ``registry``, the importable ``modules`` named in config, and ``plugins``
    (modules or objects) given in code. ``check_pending`` runs last so a
    misspelled ``spindle_*`` function fails here, not silently later.

    Raises:
        PluginLoadError: a hook module cannot be imported or has an unknown hook.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    if entry_points and registry is not None:
        for kind in registry.names("hooks"):
            obj = registry.get("hooks", kind)
            if pm.get_plugin(kind) is None:
                pm.register(obj, name=kind)
    for name in modules:
        try:
            mod = importlib.import_module(name)
        except Exception as exc:
            raise PluginLoadError(
                f"hook module '{name}' (from the 'hooks' setting) cannot be imported "
                f"({type(exc).__name__}: {exc}); is it on PYTHONPATH?",
                group="hooks",
                kind=name,
                value=name,
            ) from exc
        if pm.get_plugin(name) is None:
            pm.register(mod, name=name)
    for plugin in plugins:
        if pm.is_registered(plugin):
            continue
        pm.register(plugin, name=getattr(plugin, "__name__", None))
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginLoadError(f"hook implementation is invalid: {exc}", group="hooks") from exc
    return pm
