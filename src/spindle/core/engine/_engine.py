"""The engine: start, drive, resume, emit, cancel and inspect durable runs.

:class:`Engine` is async; :class:`SyncEngine` is its one thin synchronous
wrapper. An engine owns a store, a registry, the hook manager, observers and
the middleware chains (composed once, here). Driving a run takes a lease on
it first, so two engines — two processes on one SQLite file — never drive the
same run at once; a lease left by a dead process on this host is taken over
at once, any other only after it expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from spindle.core.config import Settings, load_settings
from spindle.core.engine import _followon
from spindle.core.engine._definitions import Definitions
from spindle.core.engine._driver import RunDriver
from spindle.core.engine._events import EventEmitter
from spindle.core.engine._journal import Pending
from spindle.core.engine._leases import Leases
from spindle.core.engine._tasks import TaskRunner
from spindle.core.errors import (
    LeaseHeld,
    RunNotWaiting,
    StoreError,
    WaitKeyMismatch,
)
from spindle.core.model import (
    AuditEntry,
    HandoffEnvelope,
    Lease,
    LedgerVerification,
    LifecycleEventType,
    RunState,
    RunStatus,
    Secrets,
    StepKind,
    StepRecord,
    StepStatus,
    WaitReason,
    WaitState,
    utcnow,
    verify,
)
from spindle.core.plugin import (
    CompositeObserver,
    EffectHandler,
    Middleware,
    MiddlewareChains,
    ObserverBinding,
    Registry,
    default_registry,
    ensure_observer,
    make_plugin_manager,
)
from spindle.core.store import Commit, Store
from spindle.core.workflow import LoadPolicy, Workflow, input_values

__all__ = ["Engine", "open_store"]

log = logging.getLogger("spindle.engine")
T = TypeVar("T")

_NO_SECRETS = Secrets()

_WAIT_KINDS = {
    WaitReason.USER: "ask_user",
    WaitReason.EVENT: "wait_event",
    WaitReason.TIMER: "wait_until",
    WaitReason.SUBWORKFLOW: "subworkflow",
}

_STORE_ALIASES = {"postgresql": "postgres", "postgres+psycopg": "postgres"}


def open_store(url: str, registry: Registry, *, durability: str = "normal") -> Store:
    """Build the store plugin for ``url`` (its scheme is the ``spindle.store`` kind)."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise StoreError(
            f"store URL {url!r} has no scheme; write sqlite:///{url} for a SQLite file, "
            f"memory:// for an in-memory store, or postgresql://user@host/db"
        )
    kind = _STORE_ALIASES.get(scheme, scheme)
    cls = registry.get("store", kind)
    # A durability written in the URL (?durability=full) wins over the setting.
    options = {} if "durability=" in url else {"durability": durability}
    store: Store = cls.from_url(url, **options)
    return store


class Engine:
    """Runs workflows durably against a store.

    Args:
        store: a :class:`Store`, a store URL, or None for ``settings.store``.
        settings: engine settings (defaults when None; see :meth:`from_config`).
        registry: where kinds are looked up (the default registry when None).
        observers: observers, callables or :class:`ObserverBinding` objects.
        middleware: extra middleware layers (besides those in ``settings``).
        hooks: modules or objects with ``@hookimpl`` functions.
        policy: the load policy workflow files must satisfy.
        workflows: named workflows that handoffs and sub-workflows may refer to.

    Example::

        async with Engine("sqlite:///runs.db") as engine:
            state = await engine.run(workflow, {"who": "Ada"})
    """

    def __init__(
        self,
        store: Store | str | None = None,
        *,
        settings: Settings | None = None,
        registry: Registry | None = None,
        observers: Iterable[Any] = (),
        middleware: Iterable[Middleware] = (),
        hooks: Iterable[Any] = (),
        policy: LoadPolicy | None = None,
        workflows: Mapping[str, Workflow] | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.registry = registry or default_registry()
        self.pm = make_plugin_manager(
            registry=self.registry, modules=self.settings.hooks, plugins=hooks
        )
        self.pm.hook.spindle_register_kinds(registry=self.registry)
        self.pm.hook.spindle_configure.call_historic(kwargs={"config": self.settings})
        if isinstance(store, Store):
            self.store = store
        else:
            self.store = open_store(
                store or self.settings.store, self.registry, durability=self.settings.durability
            )
        bindings: list[Any] = []
        for cfg in self.settings.observers:
            cfg = dict(cfg)
            required = bool(cfg.pop("required", False))
            obs = self.registry.get("observer", str(cfg.get("kind")))
            instance = (
                self.registry.create("observer", cfg, path="observers")
                if hasattr(obs, "__attrs_attrs__")
                else obs(**{k: v for k, v in cfg.items() if k != "kind"})
            )
            bindings.append(ObserverBinding(ensure_observer(instance), required))
        bindings.extend(observers)
        self.observers = CompositeObserver.of(bindings)
        self.emitter = EventEmitter(self.observers)
        layers = [
            self.registry.create("middleware", cfg, path="middleware")
            for cfg in self.settings.middleware
        ]
        self.chains = MiddlewareChains([*layers, *middleware])
        self.tasks = TaskRunner(self.pm, self.registry, self.store)
        self.node_call = self.chains.wrap("node", self.tasks.run_task)
        self._run_call = self.chains.wrap("run", self._drive_terminal)
        self.policy = policy if policy is not None else self.settings.load_policy()
        self.workflows: dict[str, Workflow] = dict(workflows or {})
        self.definitions = Definitions(self.store, self.registry, self.policy)
        self._drivers: dict[str, RunDriver] = {}
        self._secrets: dict[str, Secrets] = {}
        self._active: dict[str, asyncio.Task[Any]] = {}
        self.owner = uuid.uuid4().hex
        self.host = socket.gethostname()
        self.runs_root = Path(self.settings.runs_dir).absolute()
        self.leases = Leases(self.store, self.owner, self.host, self.settings.lease_ttl)
        self._opened = False

    @classmethod
    def from_config(
        cls,
        cwd: str | Path | None = None,
        *,
        overrides: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Engine:
        """Build an engine from ``spindle.toml`` / ``[tool.spindle]``, ``SPINDLE_*`` and
        ``overrides``, with a registry honouring the ``[plugins]`` policy."""
        settings = load_settings(cwd, overrides=overrides)
        registry = kwargs.pop("registry", None) or Registry.from_settings(settings.plugins)
        return cls(settings=settings, registry=registry, **kwargs)

    # --- lifecycle -------------------------------------------------------------------

    async def open(self) -> Engine:
        """Open the store (creating or migrating its schema)."""
        if not self._opened:
            await self.store.open()
            self._opened = True
        return self

    async def aclose(self) -> None:
        """Close executors, observers and the store."""
        await self.tasks.aclose()
        await self.observers.aclose()
        if self._opened:
            await self.store.aclose()
            self._opened = False

    async def __aenter__(self) -> Engine:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def secrets_of(self, run_id: str) -> Secrets:
        """The clear secret inputs this process holds for ``run_id`` (maybe none)."""
        return self._secrets.get(run_id) or _NO_SECRETS

    def give_secrets(self, run_id: str, values: Mapping[str, Any]) -> None:
        """Hand this process the clear values of a run's secret inputs (e.g. on resume)."""
        if values:
            known = self.secrets_of(run_id).values
            self._secrets[run_id] = Secrets({**known, **values})

    @property
    def has_finish_hooks(self) -> bool:
        """Whether any ``spindle_on_finish`` implementation is registered."""
        return bool(self.pm.hook.spindle_on_finish.get_hookimpls())

    def run_dir(self, run_id: str) -> Path:
        """The working directory of a run (``runs_dir/RUN_ID``)."""
        return self.runs_root / run_id

    # --- starting and driving -------------------------------------------------------

    async def start(
        self,
        workflow: Workflow,
        inputs: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        parent_run_id: str | None = None,
        parent_wait_key: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> str:
        """Record a new pending run of ``workflow`` and return its id (nothing runs yet).

        Raises:
            ValidationError: the workflow is invalid or an input is unknown/missing.
        """
        state = await self._start(
            workflow,
            inputs,
            run_id=run_id,
            parent_run_id=parent_run_id,
            parent_wait_key=parent_wait_key,
            labels=labels,
        )
        return state.run_id

    async def _start(
        self,
        workflow: Workflow,
        inputs: Mapping[str, Any] | None,
        *,
        run_id: str | None = None,
        parent_run_id: str | None = None,
        parent_wait_key: str | None = None,
        labels: Mapping[str, str] | None = None,
        lease: Lease | None = None,
    ) -> RunState:
        await self.open()
        workflow.validate(self.policy)
        values = input_values(workflow, inputs or {})
        def_id = await self.definitions.keep(workflow)
        secret_names = {k for k, spec in workflow.inputs.items() if spec.secret}
        stored, clear = Secrets.split(values, secret_names)
        run_id = run_id or uuid.uuid4().hex
        if clear:
            self._secrets[run_id] = Secrets(clear)
        state = RunState(
            run_id=run_id,
            workflow=workflow.name,
            # A run created leased is driven at once: it starts life running, which
            # spares its first step a status change.
            status=RunStatus.RUNNING if lease is not None else RunStatus.PENDING,
            inputs=stored,
            parent_run_id=parent_run_id,
            parent_wait_key=parent_wait_key,
            definition_id=def_id,
            labels=dict(labels or {}),
        )
        await self.store.commit(Commit(state, create=True, lease=lease))
        return state

    async def run(
        self, workflow: Workflow, inputs: Mapping[str, Any] | None = None, **options: Any
    ) -> RunState:
        """Start a run and drive it until it completes, fails or waits."""
        # The run is created already leased to this engine: one write instead of two.
        lease = Lease(
            self.owner,
            self.host,
            os.getpid(),
            utcnow() + timedelta(seconds=self.settings.lease_ttl),
            1,
        )
        state = await self._start(workflow, inputs, lease=lease, **options)
        return await self._drive(state.run_id, workflow, False, state, lease)

    async def drive(
        self, run_id: str, *, workflow: Workflow | None = None, force: bool = False
    ) -> RunState:
        """Continue a run from its ledger (after a crash, a wait, or ``start``).

        Args:
            workflow: the current definition; when it differs from the one the run
                started with, the run continues if every node it already completed is
                unchanged (changed pending nodes take the new definition).
            force: continue even when completed nodes changed.

        Raises:
            RunNotFound: no such run.
            LeaseHeld: another live process is driving the run.
            DefinitionChanged: completed nodes changed and ``force`` is false.
        """
        await self.open()
        return await self._drive(run_id, workflow, force, None)

    async def _drive(
        self,
        run_id: str,
        workflow: Workflow | None,
        force: bool,
        created: RunState | None,
        lease: Lease | None = None,
    ) -> RunState:
        if lease is None:
            lease = await self.leases.acquire(run_id)
        loop = asyncio.get_running_loop()
        # The heartbeat starts only if the drive outlives a third of the lease: most
        # drives end sooner and should not pay for a task.
        heartbeat: list[asyncio.Task[None]] = []
        timer = loop.call_later(
            self.settings.lease_ttl / 3,
            lambda: heartbeat.append(
                asyncio.ensure_future(
                    self.leases.heartbeat(run_id, lease.token, lambda: self._lost(run_id))
                )
            ),
        )
        self._active[run_id] = asyncio.current_task()  # type: ignore[assignment]
        try:
            if created is not None and lease.token == 1:
                # The first lease ever taken on the run we just created: nobody else
                # can have changed it, so there is nothing to read back.
                state, ledger = created, []
            else:
                state = await self.store.load_run(run_id)
                if state.status.terminal:
                    return state
                ledger = await self.store.ledger(run_id)
            wf = await self.definitions.for_run(state, workflow, force, ledger)
            self._drivers[run_id] = RunDriver(
                self, state, wf, lease.token, ledger, fresh=created is not None
            )
            result: RunState = await self._run_call(state)
            return result
        finally:
            timer.cancel()
            for task in heartbeat:
                task.cancel()
            done = self._drivers.pop(run_id, None)
            self._active.pop(run_id, None)
            if done is None or not done.released:
                with contextlib.suppress(Exception):
                    await self.store.release_lease(run_id, owner=self.owner, token=lease.token)

    def _lost(self, run_id: str) -> None:
        task = self._active.get(run_id)
        if task is not None:
            task.cancel()

    async def _drive_terminal(self, state: RunState) -> RunState:
        return await self._drivers[state.run_id].drive()

    # --- finishing -----------------------------------------------------------------------

    async def handoff(
        self,
        source: RunState,
        target: str,
        payload: Any = None,
        *,
        relative_to: Workflow | None = None,
        envelope: HandoffEnvelope | None = None,
    ) -> str:
        """Hand ``payload`` from ``source`` to a follow-on run of ``target``; see
        :func:`spindle.core._followon.handoff`. Returns the follow-on run's id."""
        return await _followon.handoff(
            self, source, target, payload, relative_to=relative_to, envelope=envelope
        )

    def resolve_workflow(self, target: str, relative_to: Workflow | None = None) -> Workflow:
        """Find a workflow by name (``workflows=``) or by file path (relative to the
        referring workflow's directory)."""
        return _followon.resolve_workflow(self, target, relative_to)

    async def after_terminal(self, state: RunState) -> None:
        """Notify a waiting parent run that its child ``state`` ended."""
        await _followon.after_terminal(self, state)

    # --- waits -------------------------------------------------------------------------

    async def resume(
        self,
        run_id: str,
        wait_key: str | None = None,
        payload: Any = None,
        *,
        workflow: Workflow | None = None,
        force: bool = False,
    ) -> RunState:
        """Answer a wait (or continue an interrupted run) and drive the run on.

        ``wait_key`` may be omitted when the run waits on exactly one thing. A second
        resume of a wait already answered returns the run's state unchanged.

        Raises:
            RunNotFound, RunNotWaiting, WaitKeyMismatch, InvalidAnswer.
        """
        await self.open()
        state = await self.store.load_run(run_id)
        if wait_key is not None:
            answered = await self.store.find_step(run_id, f"{run_id}:resume:{wait_key}")
            if answered is not None and not any(w.key == wait_key for w in state.waits):
                return state
        if state.status.terminal:
            raise RunNotWaiting(
                f"run {run_id} has already {state.status.value}; there is nothing to resume"
            )
        if not state.waits:
            if wait_key is not None:
                raise RunNotWaiting(
                    f"run {run_id} is {state.status.value} and not waiting for '{wait_key}'"
                )
            return await self.drive(run_id, workflow=workflow, force=force)
        if wait_key is None:
            if len(state.waits) > 1:
                keys = ", ".join(w.key for w in state.waits)
                raise WaitKeyMismatch(
                    f"run {run_id} waits on several things ({keys}); name one with --key"
                )
            wait_key = state.waits[0].key
        return await self._answer(run_id, wait_key, payload, workflow=workflow, force=force)

    async def _answer(
        self,
        run_id: str,
        wait_key: str,
        payload: Any,
        *,
        error: str | None = None,
        workflow: Workflow | None = None,
        force: bool = False,
        consume: Sequence[str] = (),
    ) -> RunState:
        state = await self.store.load_run(run_id)
        wait = next((w for w in state.waits if w.key == wait_key), None)
        if wait is None:
            keys = ", ".join(w.key for w in state.waits) or "nothing"
            raise WaitKeyMismatch(
                f"run {run_id} is not waiting on '{wait_key}'; it waits on: {keys}"
            )
        lease = await self.leases.acquire(run_id)
        handed_on = False
        try:
            state = await self.store.load_run(run_id)
            wait = next((w for w in state.waits if w.key == wait_key), None)
            if wait is None:
                return state  # answered concurrently
            ledger = await self.store.ledger(run_id)
            wf = await self.definitions.for_run(state, workflow, force, ledger)
            driver = RunDriver(self, state, wf, lease.token, ledger)
            pending = Pending()
            pending.consume.extend(consume)
            state.waits = [w for w in state.waits if w.key != wait_key]
            if wait.reason != WaitReason.RETRY:
                # A retry backoff answered by hand just ends early: the node runs again.
                value = payload
                if error is None:
                    value = self._handler_for(wf, wait).accept(wait, payload)
                driver.resolve_wait(pending, wait, value, error=error)
            await driver.commit(pending)
            handed_on = True
        finally:
            if not handed_on:
                with contextlib.suppress(Exception):
                    await self.store.release_lease(run_id, owner=self.owner, token=lease.token)
        # Drive on under the lease already held: no second acquire.
        return await self._drive(run_id, workflow, force, None, lease)

    def _handler_for(self, wf: Workflow, wait: WaitState) -> type[EffectHandler]:
        node = wf.nodes.get(wait.node_id)
        if wait.call_key is None and node is not None and node.effect is not None:
            return type(node.effect)
        kind = wait.kind or _WAIT_KINDS.get(wait.reason)
        if kind is None:
            return EffectHandler
        handler: type[EffectHandler] = self.registry.get("effect", kind)
        return handler

    async def emit(self, event_key: str, payload: Any = None) -> list[str]:
        """Deliver an event; runs waiting on ``event_key`` resume, else it waits in the inbox.

        Returns the ids of the runs it resumed (empty when kept for later).
        """
        await self.open()
        event = await self.store.deliver_event(event_key, payload)
        for run_id in await self.store.waiting_on(event_key):
            state = await self.store.load_run(run_id)
            wait = next((w for w in state.waits if w.event_key == event_key), None)
            if wait is None:
                continue
            await self._answer(run_id, wait.key, payload, consume=[event.event_id])
            return [run_id]
        return []

    async def cancel(self, run_id: str, reason: str = "cancelled") -> RunState:
        """Cancel a run and its child runs; a finished run is left as it is (no-op)."""
        await self.open()
        state = await self.store.load_run(run_id)
        if state.status.terminal:
            return state
        task = self._active.get(run_id)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        held = await self.store.get_lease(run_id)
        lease = await self.store.acquire_lease(
            run_id,
            owner=self.owner,
            host=self.host,
            pid=os.getpid(),
            ttl=self.settings.lease_ttl,
            now=utcnow(),
            steal_token=held.token if held else None,
        )
        token = lease.token if lease else None
        state = await self.store.load_run(run_id)
        ledger_count, head = await self.store.ledger_head(run_id)
        for child in await self.store.list_runs(parent_run_id=run_id):
            if not child.status.terminal:
                await self.cancel(child.run_id, f"parent run {run_id} cancelled")
        from spindle.core.model import chain

        rec = chain(
            StepRecord(
                run_id,
                ledger_count,
                "",
                StepKind.RUN,
                StepStatus.CANCELLED,
                f"{run_id}:run",
                error=reason,
                started_at=utcnow(),
                finished_at=utcnow(),
            ),
            head,
        )
        state.status = RunStatus.CANCELLED
        state.error = reason
        state.waits = []
        state.step_count = ledger_count + 1
        state.updated_at = utcnow()
        event = self.emitter.build(state, LifecycleEventType.RUN_CANCELLED, reason=reason)
        await self.store.commit(Commit(state, [rec], token=token))
        if lease is not None:
            await self.store.release_lease(run_id, owner=self.owner, token=lease.token)
        await self.emitter.send([event])
        return state

    # --- inspection --------------------------------------------------------------------

    async def get_run(self, run_id: str) -> RunState:
        """The run's state. Raises ``RunNotFound``."""
        await self.open()
        return await self.store.load_run(run_id)

    async def list_runs(
        self,
        *,
        status: RunStatus | str | None = None,
        workflow: str | None = None,
        limit: int | None = None,
    ) -> list[RunState]:
        """Runs, newest first, filtered by status and workflow name."""
        await self.open()
        st = RunStatus(status) if status is not None else None
        return await self.store.list_runs(status=st, workflow=workflow, limit=limit)

    async def ledger(self, run_id: str) -> list[StepRecord]:
        """Every ledger record of the run. Raises ``RunNotFound``."""
        await self.open()
        await self.store.load_run(run_id)
        return await self.store.ledger(run_id)

    async def verify_ledger(self, run_id: str) -> LedgerVerification:
        """Check the run's hash chain; report ok, count and the first bad index."""
        return verify(await self.ledger(run_id))

    async def pending_events(self, key: str | None = None) -> list[Any]:
        """Events in the inbox that no run has consumed yet (of one key, or all)."""
        await self.open()
        return await self.store.pending_events(key)

    async def audit(self, run_id: str) -> list[AuditEntry]:
        """The run's audit entries."""
        await self.open()
        return await self.store.audit(run_id)

    async def run_due(self, *, limit: int = 100) -> list[RunState]:
        """Drive every run with due work (pending, or a timer due now); for workers."""
        await self.open()
        out = []
        for run_id in await self.store.due_runs(utcnow(), limit=limit):
            try:
                out.append(await self.drive(run_id))
            except LeaseHeld:
                continue
        return out
