"""What the run path is handed: a frozen bundle of the engine's services.

The driver, the journal, the finish lifecycle and follow-on work take a
:class:`Services` (or the one piece of it they need), never the engine: the
engine builds the bundle once, keeps the public API, and delegates. Nothing
in the bundle changes while the engine is open; per-run state lives in an
:class:`~spindle.core.engine._active.ActiveRun`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from attrs import frozen

if TYPE_CHECKING:
    import pluggy

    from spindle.core.config import Settings
    from spindle.core.engine._definitions import Definitions
    from spindle.core.engine._events import EventEmitter
    from spindle.core.engine._leases import Leases
    from spindle.core.engine._tasks import TaskRunner
    from spindle.core.model import LedgerChain
    from spindle.core.plugin import CallNext, MiddlewareChains, Registry
    from spindle.core.store import Store
    from spindle.core.workflow import CacheSpec

__all__ = ["Limits", "Services"]


@frozen(kw_only=True)
class Limits:
    """The numbers a drive obeys (from :class:`~spindle.Settings`).

    Attributes:
        concurrency: ready nodes of one run executing at once.
        max_steps: ledger records a run may write before it is failed.
        max_inline_sleep: timers due within this many seconds are awaited in-process.
        result_inline_limit: results larger than this many bytes go to the artifact store.
        lease_ttl: seconds a lease lasts without a heartbeat.
        cancel_poll: seconds between looks for a cancel request from another process,
            while a drive lasts longer than that.
        cancel_grace: seconds ``cancel`` waits for a live driver to stop the run itself
            before taking the lease from it.
        answer_patience: seconds ``resume`` waits for a run another process holds
            (it may be recording another answer) before it gives up with ``LeaseHeld``.
    """

    concurrency: int
    max_steps: int
    max_inline_sleep: float
    result_inline_limit: int
    lease_ttl: float
    cancel_poll: float = 0.25
    cancel_grace: float = 10.0
    answer_patience: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """The limits ``settings`` describe."""
        return cls(
            concurrency=settings.concurrency,
            max_steps=settings.max_steps,
            max_inline_sleep=settings.max_inline_sleep,
            result_inline_limit=settings.result_inline_limit,
            lease_ttl=settings.lease_ttl,
            cancel_grace=settings.cancel_grace,
        )


@frozen(kw_only=True)
class Services:
    """Everything the run path uses, built once per engine.

    Attributes:
        store: where runs, ledgers, artifacts and the inbox are kept.
        registry: where kinds are looked up.
        pm: the pluggy plugin manager with every hook implementation.
        chains: the middleware chains, composed once.
        emitter: numbers lifecycle events and hands them to observers.
        tasks: runs task nodes (runtime, executor) and collects their outputs.
        leases: takes, renews and releases run leases for this engine.
        definitions: the workflow definitions runs are driven with.
        limits: the numbers a drive obeys.
        runs_root: where each run's working directory is created.
        node_call: the ``node`` middleware stage around running one task.
        chain: how new ledgers are hashed: keyed (HMAC-SHA256) when
            ``Settings.ledger_key`` is set, else plain SHA-256.
        cache_default: the ``cache:`` applied to workflows without one (the
            ``cache`` middleware's); None: caching is off unless a workflow says.
    """

    store: Store
    registry: Registry
    pm: pluggy.PluginManager
    chains: MiddlewareChains
    emitter: EventEmitter
    tasks: TaskRunner
    leases: Leases
    definitions: Definitions
    limits: Limits
    runs_root: Path
    node_call: CallNext
    chain: LedgerChain
    cache_default: CacheSpec | None = None

    def run_dir(self, run_id: str) -> Path:
        """The working directory of a run (``runs_root/RUN_ID``)."""
        return self.runs_root / run_id

    @property
    def has_finish_hooks(self) -> bool:
        """Whether any ``spindle_on_finish`` implementation is registered."""
        return bool(self.pm.hook.spindle_on_finish.get_hookimpls())
