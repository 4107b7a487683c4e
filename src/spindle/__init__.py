"""spindle: a durable, plugin-based run engine for Python.

The public API is re-exported here. Names are imported lazily on first
access so that ``spindle --help`` and plugin listings stay fast: importing
``spindle`` itself loads nothing but this module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from spindle._version import __version__ as __version__

if TYPE_CHECKING:
    from spindle.core._bases import EffectHandler as EffectHandler
    from spindle.core._bases import Executor as Executor
    from spindle.core._bases import Outcome as Outcome
    from spindle.core._bases import Runtime as Runtime
    from spindle.core._config import Settings as Settings
    from spindle.core._config import load_settings as load_settings
    from spindle.core._context import EffectContext as EffectContext
    from spindle.core._context import TaskContext as TaskContext
    from spindle.core._converter import converter as converter
    from spindle.core._engine import Engine as Engine
    from spindle.core._ledger import LedgerVerification as LedgerVerification
    from spindle.core._loader import load_workflow as load_workflow
    from spindle.core._loader import load_workflow_text as load_workflow_text
    from spindle.core._middleware import Middleware as Middleware
    from spindle.core._models import ArtifactRef as ArtifactRef
    from spindle.core._models import AuditEntry as AuditEntry
    from spindle.core._models import Effect as Effect
    from spindle.core._models import EffectOutcome as EffectOutcome
    from spindle.core._models import EffectStatus as EffectStatus
    from spindle.core._models import HandoffEnvelope as HandoffEnvelope
    from spindle.core._models import Lease as Lease
    from spindle.core._models import LifecycleEventType as LifecycleEventType
    from spindle.core._models import RunLifecycleEvent as RunLifecycleEvent
    from spindle.core._models import RunState as RunState
    from spindle.core._models import RunStatus as RunStatus
    from spindle.core._models import StepKind as StepKind
    from spindle.core._models import StepRecord as StepRecord
    from spindle.core._models import StepStatus as StepStatus
    from spindle.core._models import UnsettledWork as UnsettledWork
    from spindle.core._models import WaitReason as WaitReason
    from spindle.core._models import WaitState as WaitState
    from spindle.core._models import utcnow as utcnow
    from spindle.core._nodes import ArtifactSpec as ArtifactSpec
    from spindle.core._nodes import LoadPolicy as LoadPolicy
    from spindle.core._nodes import NodeSpec as NodeSpec
    from spindle.core._nodes import RetryPolicy as RetryPolicy
    from spindle.core._nodes import current_base_dir as current_base_dir
    from spindle.core._observers import CallbackObserver as CallbackObserver
    from spindle.core._observers import CompositeObserver as CompositeObserver
    from spindle.core._observers import NullObserver as NullObserver
    from spindle.core._observers import ObserverBinding as ObserverBinding
    from spindle.core._observers import ObserverPlugin as ObserverPlugin
    from spindle.core._observers import RunObserver as RunObserver
    from spindle.core._observers import ensure_observer as ensure_observer
    from spindle.core._registry import PluginPolicy as PluginPolicy
    from spindle.core._registry import Registry as Registry
    from spindle.core._store import Commit as Commit
    from spindle.core._store import InboxEvent as InboxEvent
    from spindle.core._store import Store as Store
    from spindle.core._sync import SyncEngine as SyncEngine
    from spindle.core._workflow import Workflow as Workflow
    from spindle.core.errors import ConfigError as ConfigError
    from spindle.core.errors import DefinitionChanged as DefinitionChanged
    from spindle.core.errors import InvalidAnswer as InvalidAnswer
    from spindle.core.errors import PluginLoadError as PluginLoadError
    from spindle.core.errors import PluginPolicyError as PluginPolicyError
    from spindle.core.errors import PolicyViolation as PolicyViolation
    from spindle.core.errors import RunNotFound as RunNotFound
    from spindle.core.errors import RunNotWaiting as RunNotWaiting
    from spindle.core.errors import SpindleError as SpindleError
    from spindle.core.errors import TaskError as TaskError
    from spindle.core.errors import UnknownKindError as UnknownKindError
    from spindle.core.errors import ValidationError as ValidationError
    from spindle.core.errors import WaitKeyMismatch as WaitKeyMismatch
    from spindle.core.hookspecs import hookimpl as hookimpl

_LAZY: dict[str, str] = {
    "ArtifactRef": "spindle.core._models",
    "ArtifactSpec": "spindle.core._nodes",
    "AuditEntry": "spindle.core._models",
    "CallbackObserver": "spindle.core._observers",
    "Commit": "spindle.core._store",
    "CompositeObserver": "spindle.core._observers",
    "ConfigError": "spindle.core.errors",
    "DefinitionChanged": "spindle.core.errors",
    "Effect": "spindle.core._models",
    "EffectContext": "spindle.core._context",
    "EffectHandler": "spindle.core._bases",
    "EffectOutcome": "spindle.core._models",
    "EffectStatus": "spindle.core._models",
    "Engine": "spindle.core._engine",
    "Executor": "spindle.core._bases",
    "HandoffEnvelope": "spindle.core._models",
    "InboxEvent": "spindle.core._store",
    "InvalidAnswer": "spindle.core.errors",
    "Lease": "spindle.core._models",
    "LedgerVerification": "spindle.core._ledger",
    "LifecycleEventType": "spindle.core._models",
    "LoadPolicy": "spindle.core._nodes",
    "Middleware": "spindle.core._middleware",
    "NodeSpec": "spindle.core._nodes",
    "NullObserver": "spindle.core._observers",
    "ObserverBinding": "spindle.core._observers",
    "ObserverPlugin": "spindle.core._observers",
    "Outcome": "spindle.core._bases",
    "PluginLoadError": "spindle.core.errors",
    "PluginPolicy": "spindle.core._registry",
    "PluginPolicyError": "spindle.core.errors",
    "PolicyViolation": "spindle.core.errors",
    "Registry": "spindle.core._registry",
    "RetryPolicy": "spindle.core._nodes",
    "RunLifecycleEvent": "spindle.core._models",
    "RunNotFound": "spindle.core.errors",
    "RunNotWaiting": "spindle.core.errors",
    "RunObserver": "spindle.core._observers",
    "RunState": "spindle.core._models",
    "RunStatus": "spindle.core._models",
    "Runtime": "spindle.core._bases",
    "Settings": "spindle.core._config",
    "SpindleError": "spindle.core.errors",
    "StepKind": "spindle.core._models",
    "StepRecord": "spindle.core._models",
    "StepStatus": "spindle.core._models",
    "Store": "spindle.core._store",
    "SyncEngine": "spindle.core._sync",
    "TaskContext": "spindle.core._context",
    "TaskError": "spindle.core.errors",
    "UnknownKindError": "spindle.core.errors",
    "UnsettledWork": "spindle.core._models",
    "ValidationError": "spindle.core.errors",
    "WaitKeyMismatch": "spindle.core.errors",
    "WaitReason": "spindle.core._models",
    "WaitState": "spindle.core._models",
    "Workflow": "spindle.core._workflow",
    "converter": "spindle.core._converter",
    "current_base_dir": "spindle.core._nodes",
    "ensure_observer": "spindle.core._observers",
    "hookimpl": "spindle.core.hookspecs",
    "load_settings": "spindle.core._config",
    "load_workflow": "spindle.core._loader",
    "load_workflow_text": "spindle.core._loader",
    "utcnow": "spindle.core._models",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'spindle' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
