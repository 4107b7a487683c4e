"""The plugin layer: how kinds are found, checked, configured and called.

The ``Plugin`` root and its groups, entry-point discovery and its cache, the
registry and its policy, configuration as a tagged union per group, the kind
bases (``Runtime``, ``Executor``, ``EffectHandler``), middleware, observers,
the task and effect contexts (and the durable calls a task context
makes, ``DurableCalls``), the hook specifications and the plugin
manager. Imports the model layer and below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spindle.core._lazy import lazy_facade

if TYPE_CHECKING:
    from spindle.core.plugin._active import active_registry as active_registry
    from spindle.core.plugin._active import set_default_registry as set_default_registry
    from spindle.core.plugin._active import using_registry as using_registry
    from spindle.core.plugin._bases import EffectHandler as EffectHandler
    from spindle.core.plugin._bases import Executor as Executor
    from spindle.core.plugin._bases import Outcome as Outcome
    from spindle.core.plugin._bases import Runtime as Runtime
    from spindle.core.plugin._calls import DurableCalls as DurableCalls
    from spindle.core.plugin._context import EffectContext as EffectContext
    from spindle.core.plugin._context import RunLinks as RunLinks
    from spindle.core.plugin._context import TaskContext as TaskContext
    from spindle.core.plugin._discovery import EntryPointInfo as EntryPointInfo
    from spindle.core.plugin._discovery import cache_dir as cache_dir
    from spindle.core.plugin._discovery import discover as discover
    from spindle.core.plugin._discovery import normalize_name as normalize_name
    from spindle.core.plugin._discovery import write_atomic as write_atomic
    from spindle.core.plugin._hooks import make_plugin_manager as make_plugin_manager
    from spindle.core.plugin._middleware import STAGES as STAGES
    from spindle.core.plugin._middleware import CallNext as CallNext
    from spindle.core.plugin._middleware import Middleware as Middleware
    from spindle.core.plugin._middleware import MiddlewareChains as MiddlewareChains
    from spindle.core.plugin._middleware import compose as compose
    from spindle.core.plugin._observers import CallbackObserver as CallbackObserver
    from spindle.core.plugin._observers import CompositeObserver as CompositeObserver
    from spindle.core.plugin._observers import NullObserver as NullObserver
    from spindle.core.plugin._observers import ObserverBinding as ObserverBinding
    from spindle.core.plugin._observers import ObserverPlugin as ObserverPlugin
    from spindle.core.plugin._observers import RunObserver as RunObserver
    from spindle.core.plugin._observers import ensure_observer as ensure_observer
    from spindle.core.plugin._plugin import GROUPS as GROUPS
    from spindle.core.plugin._plugin import Plugin as Plugin
    from spindle.core.plugin._plugin import entry_point_group as entry_point_group
    from spindle.core.plugin._policy import KindInfo as KindInfo
    from spindle.core.plugin._policy import PluginPolicy as PluginPolicy
    from spindle.core.plugin._registry import Registry as Registry
    from spindle.core.plugin._registry import default_registry as default_registry
    from spindle.core.plugin._signals import AttemptAbandoned as AttemptAbandoned
    from spindle.core.plugin._signals import Suspend as Suspend
    from spindle.core.plugin._steplog import StepHistory as StepHistory
    from spindle.core.plugin._steplog import StepLog as StepLog
    from spindle.core.plugin._structure import structure_plugin as structure_plugin
    from spindle.core.plugin.hookspecs import hookimpl as hookimpl
    from spindle.core.plugin.hookspecs import hookspec as hookspec

_LAZY: dict[str, str] = {
    "AttemptAbandoned": "spindle.core.plugin._signals",
    "CallNext": "spindle.core.plugin._middleware",
    "CallbackObserver": "spindle.core.plugin._observers",
    "CompositeObserver": "spindle.core.plugin._observers",
    "DurableCalls": "spindle.core.plugin._calls",
    "EffectContext": "spindle.core.plugin._context",
    "EffectHandler": "spindle.core.plugin._bases",
    "EntryPointInfo": "spindle.core.plugin._discovery",
    "Executor": "spindle.core.plugin._bases",
    "GROUPS": "spindle.core.plugin._plugin",
    "KindInfo": "spindle.core.plugin._policy",
    "Middleware": "spindle.core.plugin._middleware",
    "MiddlewareChains": "spindle.core.plugin._middleware",
    "NullObserver": "spindle.core.plugin._observers",
    "ObserverBinding": "spindle.core.plugin._observers",
    "ObserverPlugin": "spindle.core.plugin._observers",
    "Outcome": "spindle.core.plugin._bases",
    "Plugin": "spindle.core.plugin._plugin",
    "PluginPolicy": "spindle.core.plugin._policy",
    "Registry": "spindle.core.plugin._registry",
    "RunLinks": "spindle.core.plugin._context",
    "RunObserver": "spindle.core.plugin._observers",
    "Runtime": "spindle.core.plugin._bases",
    "STAGES": "spindle.core.plugin._middleware",
    "StepHistory": "spindle.core.plugin._steplog",
    "StepLog": "spindle.core.plugin._steplog",
    "Suspend": "spindle.core.plugin._signals",
    "TaskContext": "spindle.core.plugin._context",
    "active_registry": "spindle.core.plugin._active",
    "cache_dir": "spindle.core.plugin._discovery",
    "compose": "spindle.core.plugin._middleware",
    "default_registry": "spindle.core.plugin._registry",
    "discover": "spindle.core.plugin._discovery",
    "ensure_observer": "spindle.core.plugin._observers",
    "entry_point_group": "spindle.core.plugin._plugin",
    "hookimpl": "spindle.core.plugin.hookspecs",
    "hookspec": "spindle.core.plugin.hookspecs",
    "make_plugin_manager": "spindle.core.plugin._hooks",
    "normalize_name": "spindle.core.plugin._discovery",
    "set_default_registry": "spindle.core.plugin._active",
    "structure_plugin": "spindle.core.plugin._structure",
    "using_registry": "spindle.core.plugin._active",
    "write_atomic": "spindle.core.plugin._discovery",
}

__getattr__, __dir__ = lazy_facade(__name__, _LAZY)
__all__ = sorted(_LAZY)
