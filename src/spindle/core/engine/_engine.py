"""The engine: start, drive, resume, emit, cancel and inspect durable runs.

:class:`Engine` is async; :class:`~spindle.core.engine.SyncEngine` wraps it. The
engine builds its services once (store, registry, hooks, observers, middleware,
leases...) into a frozen :class:`~spindle.core.engine._services.Services` bundle,
keeps the public run API, and delegates: the run path gets the bundle, never the
engine. Driving a run takes a lease on it first, so two engines never drive one
run at once; a dead local process's lease is taken over at once, others expire.
"""

from __future__ import annotations

import functools
import os
import socket
import uuid
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from spindle.core.config import Settings, load_settings
from spindle.core.engine._active import ActiveRuns
from spindle.core.engine._answers import Answer
from spindle.core.engine._assembly import build_services
from spindle.core.engine._cancel import Cancels
from spindle.core.engine._creation import (
    create_run,
    existing_run,
    hold_run,
    start_once,
)
from spindle.core.engine._delivery import Delivery, check_event_key, deliver
from spindle.core.engine._drives import Drives
from spindle.core.engine._followon import FollowOn, RunOps
from spindle.core.engine._reading import RunReads
from spindle.core.engine._reruns import start_rerun
from spindle.core.engine._serving import Serving
from spindle.core.errors import LeaseHeld
from spindle.core.model import (
    Lease,
    QueueSpot,
    RunState,
    resume_key,
    utcnow,
)
from spindle.core.plugin import (
    Middleware,
    Registry,
    default_registry,
)
from spindle.core.store import Store
from spindle.core.workflow import LoadPolicy, Workflow

__all__ = ["Engine"]


class Engine(RunReads, Serving):
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
        self.settings = settings = settings or Settings()
        self.registry = registry = registry or default_registry()
        self.policy = policy if policy is not None else settings.load_policy()
        self.workflows: dict[str, Workflow] = dict(workflows or {})
        self.owner = uuid.uuid4().hex
        self.host = socket.gethostname()
        self.services = services = build_services(
            settings,
            registry,
            store,
            observers=observers,
            middleware=middleware,
            hooks=hooks,
            policy=self.policy,
            owner=self.owner,
            host=self.host,
        )
        self.pm, self.store, self.chains = services.pm, services.store, services.chains
        self.observers = services.emitter.observers
        self._active = ActiveRuns()
        self._follow_on = FollowOn(
            self.services,
            RunOps(
                start=self._create,
                drive=lambda run_id, wf: self._drives.drive(run_id, workflow=wf),
                answer_child=lambda parent, key, child: self._drives.drive(
                    parent, answer=Answer(wait_key=key, child=child)
                ),
                cancel=self.cancel,
            ),
            self.workflows,
            self.policy,
        )
        self._cancels = Cancels(self.services, self._active, self._follow_on)
        self._drives = Drives(self.services, self._active, self._follow_on)
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
        """Close executors, observers and the store; forget secrets given for later drives."""
        self._active.clear()
        await self.services.tasks.aclose()
        await self.observers.aclose()
        if self._opened:
            await self.store.aclose()
            self._opened = False

    async def __aenter__(self) -> Engine:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def give_secrets(self, run_id: str, values: Mapping[str, Any]) -> None:
        """Hand this process the clear values of a run's secret inputs for its next drive.

        Secrets are never stored: they live in this engine until the run ends (or
        the engine closes), and another process needs them given again.
        """
        self._active.give(run_id, values)

    def run_dir(self, run_id: str) -> Path:
        """The working directory of a run (``runs_dir/RUN_ID``)."""
        return self.services.run_dir(run_id)

    # --- starting and driving -------------------------------------------------------

    async def start(
        self,
        workflow: Workflow,
        inputs: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        labels: Mapping[str, str] | None = None,
        queue: str | QueueSpot | None = None,
    ) -> str:
        """Record a new pending run of ``workflow`` and return its id (nothing runs yet:
        a worker claims it). On ``queue`` (a name, or a :class:`QueueSpot` with a
        priority and a partition key; else the workflow's ``queue:``), workers claim
        it under that queue's limits.
        Idempotent by ``run_id``: a run with that id already there is returned as it
        is (a retried request, another machine), whatever ``inputs`` say now.

        Raises:
            ValidationError: the workflow is invalid, an input is unknown/missing, or
                the queue name is not valid.
            StoreError: ``run_id`` is taken by a run of another workflow.
        """
        await self.open()
        kw = {"run_id": run_id, "labels": labels, "queue": queue}
        create = functools.partial(self._create, workflow, inputs, **kw)
        return await start_once(self.store, run_id, workflow, create)

    async def _create(self, wf: Workflow, inputs: Mapping[str, Any] | None, **kw: Any) -> RunState:
        await self.open()
        return await create_run(self.services, self._active, self.policy, wf, inputs, **kw)

    async def run(
        self, workflow: Workflow, inputs: Mapping[str, Any] | None = None, **options: Any
    ) -> RunState:
        """Start a run and drive it until it completes, fails, waits or is cancelled.

        Options are those of :meth:`start` (``run_id``, ``labels``); a taken ``run_id``
        continues (or returns) that run. The new run is written with its first step's
        outcome, in one transaction, unless that first node runs alongside others, is
        an effect, runs outside this process or takes longer than 20 ms (then it is
        written first); a run of N inline nodes costs N commits.

        Raises:
            ValidationError: the workflow is invalid or an input is unknown/missing.
            StoreError: the inputs are not JSON data, or ``run_id`` is taken by a run
                of another workflow.
        """
        # The run is created leased to this engine, and written with its first step
        # (see _hold): one write instead of three.
        if not self._opened:
            await self.open()
        run_id = options.get("run_id")
        found = None if run_id is None else await existing_run(self.store, run_id, workflow)
        if found is not None:
            return found if found.status.terminal else await self.drive(found.run_id)
        lease = self._new_lease()
        state, creation = await hold_run(
            self.services, self._active, self.policy, workflow, inputs, lease, **options
        )
        return await self._drives.drive(
            state.run_id,
            workflow=workflow,
            lease=creation.lease,
            created=state,
            creation=creation,
        )

    def _new_lease(self) -> Lease:
        """The first lease (token 1) of a run this engine creates to drive at once."""
        expires = utcnow() + timedelta(seconds=self.settings.lease_ttl)
        return Lease(self.owner, self.host, os.getpid(), expires, 1)

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
        return await self._drives.drive(run_id, workflow=workflow, force=force)

    # --- waits -------------------------------------------------------------------------

    async def resume(
        self,
        run_id: str,
        wait_key: str | None = None,
        payload: Any = None,
        *,
        workflow: Workflow | None = None,
        force: bool = False,
        secrets: Mapping[str, Any] | None = None,
    ) -> RunState:
        """Answer a wait (or continue an interrupted run) and drive the run on.

        ``wait_key`` may be omitted when the run waits on exactly one thing. A second
        resume of a wait already answered returns the run's state unchanged. A
        sub-workflow's wait is answered only by its child run's end. ``secrets``
        gives the run's secret inputs again (they are never stored).

        Raises:
            RunNotFound: no run has the id ``run_id``.
            RunNotWaiting: the run is not waiting for anything.
            WaitKeyMismatch: ``wait_key`` names no wait of the run.
            InvalidAnswer: ``payload`` does not satisfy the wait (a choice not offered).
            LeaseHeld: another live process holds the run's lease.
        """
        await self.open()
        if secrets:
            self.give_secrets(run_id, secrets)
        try:
            lease = await self._drives.acquire_patiently(run_id)
        except LeaseHeld:
            if wait_key is not None:
                state = await self.store.load_run(run_id)
                answered = await self.store.find_step(run_id, resume_key(run_id, wait_key))
                if answered is not None and not any(w.key == wait_key for w in state.waits):
                    return state
            raise
        answer = Answer(wait_key=wait_key, payload=payload)
        return await self._drives.drive(
            run_id, workflow=workflow, force=force, lease=lease, answer=answer
        )

    async def retry(
        self,
        run_id: str,
        *,
        workflow: Workflow | None = None,
        force: bool = False,
        secrets: Mapping[str, Any] | None = None,
    ) -> RunState:
        """Continue a failed or cancelled run: completed nodes and sub-steps are kept,
        failed and skipped nodes run again from their next attempt, in the same ledger.

        ``workflow`` is the definition as it is now (see :meth:`drive`), for a fix
        made since; ``secrets`` gives the run's secret inputs again.

        Raises:
            RunNotFound, LeaseHeld: as for :meth:`resume`.
            NothingToRetry: the run did not fail and was not cancelled.
            DefinitionChanged: ``workflow`` changed a node that already completed.
        """
        await self.open()
        if secrets:
            self.give_secrets(run_id, secrets)
        lease = await self._drives.acquire_patiently(run_id)
        return await self._drives.drive(
            run_id, workflow=workflow, force=force, lease=lease, reopen=True
        )

    async def rerun(
        self,
        run_id: str,
        from_node: str,
        *,
        workflow: Workflow | None = None,
        secrets: Mapping[str, Any] | None = None,
        new_run_id: str | None = None,
    ) -> RunState:
        """Start a new run of ``run_id``'s workflow and inputs that reuses the recorded
        results of every node but ``from_node`` and its dependants, which run again.

        The new run is labelled ``rerun_of`` (the source) and ``rerun_from``;
        ``workflow`` replaces the stored definition (its changed nodes must be
        among those that run again, as for :meth:`drive`).

        Raises:
            RunNotFound; ValidationError: ``from_node`` is not a node of the workflow.
        """
        await self.open()
        return await start_rerun(
            self.services,
            self._drives,
            self._active,
            self._new_lease(),
            run_id,
            from_node,
            workflow=workflow,
            secrets=secrets,
            new_run_id=new_run_id,
        )

    async def emit(self, event_key: str, payload: Any = None) -> list[str]:
        """Deliver an event; a run waiting on ``event_key`` resumes, else it waits in the inbox.

        Returns the ids of the runs it resumed now: empty when the event was kept
        for later — for the first run to wait on the key, or queued for a waiting
        run that is busy (it takes the event when it next stops to wait).
        :meth:`deliver` says which.

        Raises:
            ValidationError: ``event_key`` is reserved (it starts with ``spindle:``).
        """
        return (await self.deliver(event_key, payload)).resumed

    async def deliver(self, event_key: str, payload: Any = None) -> Delivery:
        """:meth:`emit`, telling where the event went: the run it resumed, the busy run it
        is queued for, or neither (kept for the first run to wait on the key). The
        event reaches one run, once, and is never lost.

        Raises:
            ValidationError: ``event_key`` is reserved (it starts with ``spindle:``).
        """
        check_event_key(event_key)
        await self.open()
        return await deliver(self.store, self._drives, event_key, payload)

    async def cancel(self, run_id: str, reason: str = "cancelled") -> RunState:
        """Cancel a run and its child runs, wherever the run is driven; a finished run is
        left as it is. A waiting parent of the run is answered: it fails, or continues
        if its node says ``continue_on_failure``."""
        await self.open()
        return await self._cancels.cancel(run_id, reason)
