"""Every error spindle raises on purpose.

Each error subclasses :class:`SpindleError` and, where one fits, the builtin a
caller would already catch (a missing run is also a ``KeyError``; a bad
workflow file is also a ``ValueError``). Messages name the thing that was
wrong and how to fix it.

::

    SpindleError
    ├── PluginError
    │   ├── PluginLoadError (ImportError)      broken entry point / duplicate kind
    │   ├── UnknownKindError (LookupError)     no plugin of that kind installed
    │   └── PluginPolicyError (PermissionError) kind refused by allow/deny lists
    ├── ConfigError (ValueError)                spindle.toml / env / flags
    ├── KindMissing (KeyError)                  a plugin mapping without 'kind'
    ├── ValidationError (ValueError)            workflow definitions, all problems at once
    │   └── PolicyViolation (PermissionError)  workflow refused by a load policy
    ├── RunError
    │   ├── RunNotFound (KeyError)
    │   ├── RunNotWaiting
    │   ├── WaitKeyMismatch (ValueError)
    │   ├── InvalidAnswer (ValueError)
    │   ├── NothingToRetry                     retry of a run that did not fail
    │   ├── DefinitionChanged
    │   ├── LeaseHeld                           another process drives the run
    │   └── LeaseLost                           the lease was taken over mid-drive
    ├── TaskError                               a node failed (carries the node id)
    │   ├── TaskTimeout (TimeoutError)
    │   │   └── StepTimeout                    a sub-step ran past its timeout
    │   ├── SecretUnavailable                  a secret input must be given again
    │   └── NondeterminismError                sub-steps replayed in another order
    ├── StoreError                              a store cannot be opened or written
    │   ├── StoreCorrupt                       not a spindle store, or damaged
    │   ├── StoreFull                          the disk (or the store's size limit) is full
    │   ├── StoreBusy (TimeoutError)           locked by another process past busy_timeout
    │   ├── StoreReadOnly (PermissionError)    the file or its directory cannot be written
    │   ├── SchemaTooNew                       written by a newer spindle
    │   └── SchemaTooOld                       needs: spindle db upgrade
    ├── LedgerError
    │   └── LedgerIntegrityError               a run's ledger does not match its head,
    │                                           or its key is missing: not continued
    └── HookError                               an engine hook raised
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "ConfigError",
    "DefinitionChanged",
    "HookError",
    "InvalidAnswer",
    "KindMissing",
    "LeaseHeld",
    "LeaseLost",
    "LedgerError",
    "LedgerIntegrityError",
    "NondeterminismError",
    "NothingToRetry",
    "PluginError",
    "PluginLoadError",
    "PluginPolicyError",
    "PolicyViolation",
    "RunError",
    "RunNotFound",
    "RunNotWaiting",
    "SchemaTooNew",
    "SchemaTooOld",
    "SecretUnavailable",
    "SpindleError",
    "StepTimeout",
    "StoreBusy",
    "StoreCorrupt",
    "StoreError",
    "StoreFull",
    "StoreReadOnly",
    "TaskError",
    "TaskTimeout",
    "UnknownKindError",
    "ValidationError",
    "WaitKeyMismatch",
]


class SpindleError(Exception):
    """Base class of every error spindle raises deliberately."""


# --- plugins -----------------------------------------------------------------


class PluginError(SpindleError):
    """A plugin could not be found, loaded or used."""


class PluginLoadError(PluginError, ImportError):
    """An entry point is broken: import failed, wrong base class, or duplicate kind.

    Raised when the broken kind is *used*; listing and other kinds keep working.
    Besides the message, it carries the parts: the ``group`` and ``kind``, the
    entry point's ``value`` (``module:attr``), the ``distribution`` and its
    ``version``, and the ``reason`` alone (what was wrong, without where),
    when one entry point is to blame.
    """

    def __init__(
        self,
        message: str,
        *,
        group: str = "",
        kind: str = "",
        distribution: str = "",
        value: str = "",
        version: str = "",
        reason: str = "",
    ) -> None:
        super().__init__(message)
        self.group = group
        self.kind = kind
        self.distribution = distribution
        self.value = value
        self.version = version
        self.reason = reason

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownKindError(PluginError, LookupError):
    """No plugin of the requested kind is installed in the group."""

    def __init__(self, message: str, *, group: str = "", kind: str = "") -> None:
        super().__init__(message)
        self.group = group
        self.kind = kind

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class PluginPolicyError(PluginError, PermissionError):
    """A plugin kind or distribution is refused by the allow/deny configuration."""


# --- configuration and definitions ----------------------------------------------


class ConfigError(SpindleError, ValueError):
    """Configuration (``spindle.toml``, ``SPINDLE_*``, CLI flags) is invalid."""


class KindMissing(SpindleError, KeyError):
    """A plugin mapping (``runtime:``, ``effect:`` ...) has no ``kind`` key."""

    def __init__(self, group: str) -> None:
        super().__init__(f"missing 'kind': say which {group} to use")

    def __str__(self) -> str:
        return str(self.args[0])


class ValidationError(SpindleError, ValueError):
    """A workflow definition is invalid; ``problems`` lists every problem found.

    Each problem is one line ``"message @ path"`` (with ``file:line`` when the
    definition came from a file), so a user can fix them all in one pass.
    """

    def __init__(self, summary: str, problems: Sequence[str] = ()) -> None:
        self.summary = summary
        self.problems = list(problems)
        super().__init__(summary)

    #: At most this many problems are shown, each cut to ``LINE_LIMIT`` characters:
    #: a generated or hostile file must not turn one error into megabytes of text
    #: (``problems`` keeps every one, whole).
    SHOWN_PROBLEMS = 50
    LINE_LIMIT = 1000

    def __str__(self) -> str:
        summary = _cut(self.summary, self.LINE_LIMIT)
        if not self.problems:
            return summary
        shown = self.problems[: self.SHOWN_PROBLEMS]
        lines = [f"  - {_cut(p, self.LINE_LIMIT)}" for p in shown]
        if len(self.problems) > len(shown):
            lines.append(f"  ... and {len(self.problems) - len(shown)} more problems")
        return "\n".join([summary, *lines])


def _cut(text: str, limit: int) -> str:
    """``text`` whole, or its start and its end (where ``@ path`` is) around a marker."""
    if len(text) <= limit:
        return text
    tail = limit // 4
    return f"{text[: limit - tail]} ... ({len(text)} characters) ... {text[-tail:]}"


class PolicyViolation(ValidationError, PermissionError):
    """A workflow uses a kind (or a command) that the load policy refuses."""


# --- runs --------------------------------------------------------------------


class RunError(SpindleError):
    """An operation on a run cannot be carried out."""


class RunNotFound(RunError, KeyError):
    """No run with that id exists in the store."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class RunNotWaiting(RunError):
    """``resume`` was asked of a run that is not waiting for anything."""


class WaitKeyMismatch(RunError, ValueError):
    """``resume`` named a wait key the run is not waiting on."""


class InvalidAnswer(RunError, ValueError):
    """A resume payload does not satisfy the wait (e.g. a choice not offered)."""


class NothingToRetry(RunError):
    """``retry`` was asked of a run that did not fail or was not cancelled."""


class DefinitionChanged(RunError):
    """The workflow changed under a run in a node that already completed."""

    def __init__(self, message: str, changed: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.changed = list(changed)


class LeaseHeld(RunError):
    """Another live process holds the lease on the run."""


class LeaseLost(RunError):
    """The lease on a run was taken over while this process was driving it."""


# --- tasks -------------------------------------------------------------------


class TaskError(SpindleError):
    """A node's task failed; ``node_id`` names it and ``cause`` describes why."""

    def __init__(self, message: str, *, node_id: str = "", details: Any = None) -> None:
        super().__init__(message)
        self.node_id = node_id
        self.details = details


class TaskTimeout(TaskError, TimeoutError):
    """A node ran past its ``timeout`` and was cancelled."""


class SecretUnavailable(TaskError):
    """A node needs a secret input this process was not given; the run waits for it."""


class StepTimeout(TaskTimeout):
    """A sub-step (``ctx.step(fn, timeout=...)``) ran past its timeout."""


class NondeterminismError(TaskError):
    """A task made its sub-steps in another order than the ledger recorded.

    Replaying would hand a recorded value to a different call, so the node
    fails instead, naming the step the ledger expected and the one it found.
    """


# --- storage -----------------------------------------------------------------


class StoreError(SpindleError):
    """A store could not be opened or used."""


class StoreCorrupt(StoreError):
    """The store's file or database is not a spindle store or is damaged."""


class StoreFull(StoreError):
    """A write failed because the disk (or the store's size limit) is full.

    The write was rolled back: what was committed before is kept, and the run
    it was for is left as it was, to be resumed once there is room again.
    """


class StoreBusy(StoreError, TimeoutError):
    """Another process held the store's lock for longer than ``busy_timeout``.

    Nothing was written; the same operation can simply be tried again.
    """


class StoreReadOnly(StoreError, PermissionError):
    """The store's file (or the directory it needs for its journal) is not writable."""


class SchemaTooNew(StoreError):
    """The store was written by a newer spindle with a schema this one cannot read."""


class SchemaTooOld(StoreError):
    """The store's schema is older than this spindle's: ``spindle db upgrade`` migrates it.

    A shared store (PostgreSQL) is not migrated by whichever process opens it
    first, so that workers still running an older spindle are not surprised.
    """


class LedgerError(SpindleError):
    """A ledger operation is invalid (e.g. appending out of sequence)."""


class LedgerIntegrityError(LedgerError):
    """A run's ledger or state does not match the head its row records (records were
    removed or added, or the row was edited), or the ledger is keyed with a key this
    engine does not have: the run is not continued, so no completed node runs again."""


class HookError(SpindleError):
    """An engine hook implementation raised; the message names the hook plugin."""
