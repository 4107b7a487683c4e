"""Build the pluggy plugin manager from entry points, config and code, checking each hook module.

A hook module is checked before it is registered (:func:`hook_problems`):
every ``@hookimpl`` function must name a spindle hook, and pluggy must
accept it (its arguments come from the hook's spec). An *installed* hook
module that fails is skipped with a warning, so a misspelled hook in one
distribution never stops every engine; a module or object the host names
itself (the ``hooks`` setting, ``Engine(hooks=...)``) fails loudly with a
:class:`~spindle.core.errors.PluginLoadError`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pluggy

from spindle.core.errors import PluginLoadError, PluginPolicyError
from spindle.core.plugin import hookspecs

if TYPE_CHECKING:
    from spindle.core.plugin._registry import Registry

__all__ = ["hook_problems", "make_plugin_manager"]

_log = logging.getLogger(__name__)
_PREFIX = "spindle_"


def _new_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def _hook_names(pm: pluggy.PluginManager) -> list[str]:
    return sorted(name for name in dir(hookspecs) if pm.parse_hookspec_opts(hookspecs, name))


def _unknown_hook(name: str, known: list[str]) -> str:
    """Say that ``name`` is no hook, suggesting the closest one."""
    # Compare without the shared prefix: every name starts with "spindle_",
    # which would make any two look alike.
    stems = {k.removeprefix(_PREFIX): k for k in known}
    import difflib  # only for a misspelled hook: kept off every engine's start-up

    close = difflib.get_close_matches(name.removeprefix(_PREFIX), list(stems), n=1)
    if close:
        return f"'{name}' is not a spindle hook; did you mean '{stems[close[0]]}'?"
    return f"'{name}' is not a spindle hook; the hooks are {', '.join(known)} (docs/hooks.md)"


def hook_problems(plugin: Any) -> list[str]:
    """Every reason the hook module (or object) ``plugin`` cannot be used; empty when it can.

    A function marked ``@hookimpl`` must be named after a spindle hook (or
    carry ``specname=`` naming one, or ``optionalhook=True``); the closest
    hook name is suggested for a misspelling. Each may take only arguments
    the hook passes. Then pluggy must accept the module (it also refuses, for
    instance, a wrapper of a historic hook). Registration happens on a
    throwaway plugin manager, so nothing is kept.

    Example::

        >>> hook_problems(badhooks)
        ["'spindle_on_finnish' is not a spindle hook; did you mean 'spindle_on_finish'?"]
    """
    pm = _new_manager()
    known = _hook_names(pm)
    problems: list[str] = []
    bad_arguments = False
    for name in dir(plugin):
        try:
            opts = pm.parse_hookimpl_opts(plugin, name)
        except Exception:  # an attribute that fails to resolve is no hook
            continue
        if opts is None:
            continue
        hook = opts.get("specname") or name
        if hook not in known:
            if not opts.get("optionalhook"):
                problems.append(_unknown_hook(hook, known))
            continue
        spec = getattr(pm.hook, hook).spec
        if spec is None:  # every known hook has one; this narrows the type
            continue
        impl = pluggy.HookImpl(plugin, "check", getattr(plugin, name), opts)
        extra = [arg for arg in impl.argnames if arg not in spec.argnames]
        if extra:
            bad_arguments = True
            problems.append(
                f"'{name}' takes {', '.join(repr(a) for a in extra)}, which hook '{hook}' "
                f"does not pass; take any of {', '.join(spec.argnames)}, by name"
            )
    if not bad_arguments:  # pluggy would only repeat those; it checks the rest
        try:
            pm.register(plugin)
        except pluggy.PluginValidationError as exc:
            # pluggy's message spans lines: plugin, the definition, what is wrong.
            lines = (line.strip() for line in str(exc).splitlines())
            problems.append("; ".join(line for line in lines if line))
    return problems


def _skipped(err: PluginLoadError) -> str:
    """The warning for an installed hook module that is left out."""
    if err.reason:
        return (
            f"hook module '{err.value}' from distribution {err.distribution} {err.version} "
            f"(entry point spindle.hooks:{err.kind} = {err.value}) is skipped: {err.reason}"
        )
    return f"hook module '{err.kind}' is skipped: {err}"


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
    (modules or objects) given in code. Each is checked with
    :func:`hook_problems` first. An entry-point hook module that cannot be
    loaded or fails the check is skipped with a warning on the
    ``spindle.core.plugin._hooks`` logger, naming its distribution, entry
    point and the bad hook; one the ``[plugins]`` policy refuses is left out;
    the others are registered.

    Raises:
        PluginLoadError: a hook module named in config or given in code cannot
            be imported or has an invalid hook (an unknown name, with the
            closest hook suggested, or arguments the hook does not pass).
    """
    pm = _new_manager()
    if entry_points and registry is not None:
        for kind in registry.names("hooks"):
            try:
                obj = registry.get("hooks", kind)
            except PluginPolicyError as err:
                # Refused on purpose by the [plugins] allow/deny lists: left out quietly.
                _log.info("hook module '%s' is not loaded: %s", kind, err)
                continue
            except PluginLoadError as err:
                _log.warning("%s", _skipped(err))
                continue
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
        _require_valid(mod, f"hook module '{name}' (from the 'hooks' setting)", name)
        if pm.get_plugin(name) is None:
            pm.register(mod, name=name)
    for plugin in plugins:
        if pm.is_registered(plugin):
            continue
        plugin_name = getattr(plugin, "__name__", None)
        what = f"hook plugin {plugin_name or plugin!r} (from Engine(hooks=...))"
        _require_valid(plugin, what, plugin_name)
        pm.register(plugin, name=plugin_name)
    try:
        # A safety net: everything registered was checked above.
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginLoadError(f"hook implementation is invalid: {exc}", group="hooks") from exc
    return pm


def _require_valid(plugin: Any, what: str, name: str | None) -> None:
    problems = hook_problems(plugin)
    if problems:
        raise PluginLoadError(
            f"{what} is invalid: {'; '.join(problems)}",
            group="hooks",
            kind=name or "",
            value=name or "",
            reason="; ".join(problems),
        )
