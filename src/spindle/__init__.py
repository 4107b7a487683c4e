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
    from spindle.core.config._settings import Settings as Settings
    from spindle.core.config._settings import load_settings as load_settings
    from spindle.core.engine._delivery import Delivery as Delivery
    from spindle.core.engine._engine import Engine as Engine
    from spindle.core.engine._finish import FinishingRun as FinishingRun
    from spindle.core.engine._sync import SyncEngine as SyncEngine
    from spindle.core.engine._worker import Worker as Worker
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
    from spindle.core.model._converter import converter as converter
    from spindle.core.model._effects import Effect as Effect
    from spindle.core.model._effects import EffectAnswer as EffectAnswer
    from spindle.core.model._effects import EffectOutcome as EffectOutcome
    from spindle.core.model._effects import EffectStatus as EffectStatus
    from spindle.core.model._events import LifecycleEventType as LifecycleEventType
    from spindle.core.model._events import RunLifecycleEvent as RunLifecycleEvent
    from spindle.core.model._ledger import LedgerVerification as LedgerVerification
    from spindle.core.model._ledger import StepKind as StepKind
    from spindle.core.model._ledger import StepRecord as StepRecord
    from spindle.core.model._ledger import StepStatus as StepStatus
    from spindle.core.model._records import ArtifactRef as ArtifactRef
    from spindle.core.model._records import AuditEntry as AuditEntry
    from spindle.core.model._records import HandoffEnvelope as HandoffEnvelope
    from spindle.core.model._records import UnsettledWork as UnsettledWork
    from spindle.core.model._retry import RetryPolicy as RetryPolicy
    from spindle.core.model._run import Lease as Lease
    from spindle.core.model._run import RunState as RunState
    from spindle.core.model._run import RunStatus as RunStatus
    from spindle.core.model._run import WaitReason as WaitReason
    from spindle.core.model._run import WaitState as WaitState
    from spindle.core.model._time import utcnow as utcnow
    from spindle.core.model._work import QueueLimits as QueueLimits
    from spindle.core.model._work import QueueSpot as QueueSpot
    from spindle.core.model._work import WorkerInfo as WorkerInfo
    from spindle.core.plugin._bases import EffectHandler as EffectHandler
    from spindle.core.plugin._bases import Executor as Executor
    from spindle.core.plugin._bases import Outcome as Outcome
    from spindle.core.plugin._bases import Runtime as Runtime
    from spindle.core.plugin._context import EffectContext as EffectContext
    from spindle.core.plugin._context import RunLinks as RunLinks
    from spindle.core.plugin._context import TaskContext as TaskContext
    from spindle.core.plugin._middleware import CallNext as CallNext
    from spindle.core.plugin._middleware import Middleware as Middleware
    from spindle.core.plugin._observers import CallbackObserver as CallbackObserver
    from spindle.core.plugin._observers import CompositeObserver as CompositeObserver
    from spindle.core.plugin._observers import NullObserver as NullObserver
    from spindle.core.plugin._observers import ObserverBinding as ObserverBinding
    from spindle.core.plugin._observers import ObserverPlugin as ObserverPlugin
    from spindle.core.plugin._observers import RunObserver as RunObserver
    from spindle.core.plugin._observers import ensure_observer as ensure_observer
    from spindle.core.plugin._policy import PluginPolicy as PluginPolicy
    from spindle.core.plugin._registry import Registry as Registry
    from spindle.core.plugin.hookspecs import hookimpl as hookimpl
    from spindle.core.store._contract import Commit as Commit
    from spindle.core.store._contract import InboxEvent as InboxEvent
    from spindle.core.store._contract import Store as Store
    from spindle.core.workflow._loader import load_workflow as load_workflow
    from spindle.core.workflow._loader import load_workflow_text as load_workflow_text
    from spindle.core.workflow._nodes import ArtifactSpec as ArtifactSpec
    from spindle.core.workflow._nodes import LoadPolicy as LoadPolicy
    from spindle.core.workflow._nodes import NodeSpec as NodeSpec
    from spindle.core.workflow._nodes import current_base_dir as current_base_dir
    from spindle.core.workflow._workflow import Workflow as Workflow
    from spindle.plugins.payloads import CodePayload as CodePayload
    from spindle.plugins.payloads import CommandPayload as CommandPayload
    from spindle.plugins.payloads import PythonCall as PythonCall
    from spindle.plugins.payloads import ScriptPayload as ScriptPayload

_LAZY: dict[str, str] = {
    "ArtifactRef": "spindle.core.model._records",
    "ArtifactSpec": "spindle.core.workflow._nodes",
    "AuditEntry": "spindle.core.model._records",
    "CallNext": "spindle.core.plugin._middleware",
    "CallbackObserver": "spindle.core.plugin._observers",
    "CodePayload": "spindle.plugins.payloads",
    "CommandPayload": "spindle.plugins.payloads",
    "Commit": "spindle.core.store._contract",
    "CompositeObserver": "spindle.core.plugin._observers",
    "ConfigError": "spindle.core.errors",
    "DefinitionChanged": "spindle.core.errors",
    "Delivery": "spindle.core.engine._delivery",
    "Effect": "spindle.core.model._effects",
    "EffectContext": "spindle.core.plugin._context",
    "EffectHandler": "spindle.core.plugin._bases",
    "EffectAnswer": "spindle.core.model._effects",
    "EffectOutcome": "spindle.core.model._effects",
    "EffectStatus": "spindle.core.model._effects",
    "Engine": "spindle.core.engine._engine",
    "Executor": "spindle.core.plugin._bases",
    "FinishingRun": "spindle.core.engine._finish",
    "HandoffEnvelope": "spindle.core.model._records",
    "InboxEvent": "spindle.core.store._contract",
    "InvalidAnswer": "spindle.core.errors",
    "Lease": "spindle.core.model._run",
    "LedgerVerification": "spindle.core.model._ledger",
    "LifecycleEventType": "spindle.core.model._events",
    "LoadPolicy": "spindle.core.workflow._nodes",
    "Middleware": "spindle.core.plugin._middleware",
    "NodeSpec": "spindle.core.workflow._nodes",
    "NullObserver": "spindle.core.plugin._observers",
    "ObserverBinding": "spindle.core.plugin._observers",
    "ObserverPlugin": "spindle.core.plugin._observers",
    "Outcome": "spindle.core.plugin._bases",
    "PluginLoadError": "spindle.core.errors",
    "PluginPolicy": "spindle.core.plugin._policy",
    "PluginPolicyError": "spindle.core.errors",
    "PolicyViolation": "spindle.core.errors",
    "PythonCall": "spindle.plugins.payloads",
    "QueueLimits": "spindle.core.model._work",
    "QueueSpot": "spindle.core.model._work",
    "Registry": "spindle.core.plugin._registry",
    "RetryPolicy": "spindle.core.model._retry",
    "RunLifecycleEvent": "spindle.core.model._events",
    "RunLinks": "spindle.core.plugin._context",
    "RunNotFound": "spindle.core.errors",
    "RunNotWaiting": "spindle.core.errors",
    "RunObserver": "spindle.core.plugin._observers",
    "RunState": "spindle.core.model._run",
    "RunStatus": "spindle.core.model._run",
    "Runtime": "spindle.core.plugin._bases",
    "ScriptPayload": "spindle.plugins.payloads",
    "Settings": "spindle.core.config._settings",
    "SpindleError": "spindle.core.errors",
    "StepKind": "spindle.core.model._ledger",
    "StepRecord": "spindle.core.model._ledger",
    "StepStatus": "spindle.core.model._ledger",
    "Store": "spindle.core.store._contract",
    "SyncEngine": "spindle.core.engine._sync",
    "TaskContext": "spindle.core.plugin._context",
    "TaskError": "spindle.core.errors",
    "UnknownKindError": "spindle.core.errors",
    "UnsettledWork": "spindle.core.model._records",
    "ValidationError": "spindle.core.errors",
    "WaitKeyMismatch": "spindle.core.errors",
    "WaitReason": "spindle.core.model._run",
    "WaitState": "spindle.core.model._run",
    "Worker": "spindle.core.engine._worker",
    "WorkerInfo": "spindle.core.model._work",
    "Workflow": "spindle.core.workflow._workflow",
    "converter": "spindle.core.model._converter",
    "current_base_dir": "spindle.core.workflow._nodes",
    "ensure_observer": "spindle.core.plugin._observers",
    "hookimpl": "spindle.core.plugin.hookspecs",
    "load_settings": "spindle.core.config._settings",
    "load_workflow": "spindle.core.workflow._loader",
    "load_workflow_text": "spindle.core.workflow._loader",
    "utcnow": "spindle.core.model._time",
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
