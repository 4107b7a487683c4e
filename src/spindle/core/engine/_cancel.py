"""Cancelling a run, wherever it is driven.

* Driven by this engine: its drive is asked to stop; the driver stops the
  attempts in flight and records the cancel itself.
* Driven by nobody (waiting, pending, or left by a dead process): the lease
  is taken here and the cancel recorded under it.
* Driven by another live process: a cancel request goes to the inbox under
  a reserved key; that driver looks for it a few times a second, stops its
  attempts and records the cancel. If it does not within ``cancel_grace``
  seconds (a task stuck in a call it cannot leave), the lease is taken from
  it and the cancel recorded here; its next write fails on the stale
  fencing token, so it can never overwrite the cancel.

Every path writes through a :class:`~spindle.core.engine._journal.RunJournal`
under the lease's token. A cancel ends the run's children too, and answers
a waiting parent (which fails, or continues under ``continue_on_failure``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from spindle.core.engine._active import Stop, StopKind
from spindle.core.engine._ending import cancel_batch
from spindle.core.engine._integrity import continue_chain
from spindle.core.engine._journal import RunJournal
from spindle.core.model import RunState, RunStatus, cancel_request_key

if TYPE_CHECKING:
    from spindle.core.engine._active import ActiveRuns
    from spindle.core.engine._followon import FollowOn
    from spindle.core.engine._services import Services
    from spindle.core.model import Lease

__all__ = ["Cancels"]

#: Seconds between looks at a run another process was asked to cancel.
_LOOK = 0.05


class Cancels:
    """Cancels runs for one engine."""

    def __init__(self, services: Services, active: ActiveRuns, follow_on: FollowOn) -> None:
        self.services = services
        self.active = active
        self.follow_on = follow_on

    async def cancel(self, run_id: str, reason: str) -> RunState:
        """Cancel ``run_id`` and its children; a run that ended is left as it is.

        Raises:
            RunNotFound: no such run.
        """
        store = self.services.store
        state = await store.load_run(run_id)
        if state.status.terminal:
            if state.status == RunStatus.CANCELLED:
                # A cancel interrupted before it reached every child finishes now.
                await self.follow_on.cancel_children(run_id)
            return state
        here = self.active.get(run_id)
        if here is not None:
            here.request_stop(Stop(StopKind.CANCEL, reason))
            if here.task is not asyncio.current_task():
                await here.wait_ended()
            await self.follow_on.cancel_children(run_id)
            return await store.load_run(run_id)
        lease = await self.services.leases.try_acquire(run_id)
        if lease is None:
            ended = await self._ask_driver(run_id, reason)
            if ended is not None:
                return ended
            lease = await self.services.leases.take_over(run_id)
        if lease is None:  # another canceller took it first: it records the cancel
            return await store.load_run(run_id)
        return await self._cancel_under(run_id, lease, reason)

    async def _ask_driver(self, run_id: str, reason: str) -> RunState | None:
        """Ask the live driver of ``run_id`` to cancel it; the run's state once it ended,
        or None when the lease must be taken here (the driver is gone or does not answer)."""
        store = self.services.store
        await store.deliver_event(cancel_request_key(run_id), {"reason": reason})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.services.limits.cancel_grace
        while loop.time() < deadline:
            await asyncio.sleep(_LOOK)
            state = await store.load_run(run_id)
            if state.status.terminal:
                if state.status == RunStatus.CANCELLED:
                    await self.follow_on.cancel_children(run_id)
                else:
                    await self._withdraw(run_id)  # the run ended by itself first
                return state
            if not self.services.leases.held_by_live_driver(await store.get_lease(run_id)):
                return None  # the driver let go (the run waits) or died: cancel here
        return None

    async def _cancel_under(self, run_id: str, lease: Lease, reason: str) -> RunState:
        """Record the cancel of ``run_id`` under ``lease``, then settle what it ends."""
        services = self.services
        store = services.store
        journal: RunJournal | None = None
        try:
            state = await store.load_run(run_id)
            if state.status.terminal:
                return state
            position = await store.ledger_head(run_id)
            chain = continue_chain(
                services.chain, state, *position, action="cancelled", verb="cancel"
            )
            journal = RunJournal(
                store, services.emitter, state, lease.token, position=position, chain=chain
            )
            pending = cancel_batch(journal, reason)
            # Requests sent to a driver that did not answer are settled by this cancel.
            pending.consume.extend(
                e.event_id for e in await store.pending_events(cancel_request_key(run_id))
            )
            await journal.commit(pending)
        finally:
            if journal is None or not journal.released:
                await services.leases.release(run_id, lease.token)
        await self.follow_on.settle(state)
        return state

    async def _withdraw(self, run_id: str) -> None:
        """Consume the cancel requests of a run that ended before its driver saw them."""
        services = self.services
        requests = await services.store.pending_events(cancel_request_key(run_id))
        lease = await services.leases.try_acquire(run_id) if requests else None
        if lease is None:
            return
        try:
            state = await services.store.load_run(run_id)
            position = await services.store.ledger_head(run_id)
            chain = continue_chain(services.chain, state, *position)
            journal = RunJournal(
                services.store, services.emitter, state, lease.token, position=position, chain=chain
            )
            pending = journal.pending()
            pending.consume.extend(e.event_id for e in requests)
            await journal.commit(pending)
        finally:
            await services.leases.release(run_id, lease.token)
