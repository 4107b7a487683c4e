"""The one way a run is driven: under its lease, loaded once, settled after.

:meth:`Drives.drive` takes (or is handed) the run's lease, records the
drive in an :class:`~spindle.core.engine._active.ActiveRun`, loads the run
and its ledger once, builds the :class:`RunDriver`, answers a wait first if
asked to, and runs the ``run`` middleware stage around the driver's loop.
While the drive lasts the lease is renewed and the inbox watched for a
cancel from another process. Once the run ended, what its end sets off
(handoffs, cancelling children, the parent's wait) is settled.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from spindle.core.engine._active import ActiveRun, Stop, StopKind
from spindle.core.engine._delays import DelayedCalls
from spindle.core.engine._driver import RunDriver
from spindle.core.engine._due import queued_answer
from spindle.core.engine._integrity import continue_chain
from spindle.core.engine._reruns import reopen_batch
from spindle.core.errors import InvalidAnswer, LeaseHeld, LeaseLost
from spindle.core.model import RunState, RunStatus, cancel_request_key

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from spindle.core.engine._active import ActiveRuns
    from spindle.core.engine._answers import Answer
    from spindle.core.engine._followon import FollowOn
    from spindle.core.engine._journal import Creation
    from spindle.core.engine._services import Services
    from spindle.core.model import Lease, StepRecord
    from spindle.core.workflow import Workflow

__all__ = ["Drives"]


class Drives:
    """Drives runs for one engine."""

    def __init__(self, services: Services, active: ActiveRuns, follow_on: FollowOn) -> None:
        self._services = services
        self._active = active
        self._follow_on = follow_on
        self._run_call = services.chains.wrap("run", self._drive_terminal)
        #: Told the id of each run whose lease another process took during a drive
        #: (a worker that stalled: its drive's writes were refused). Set by a worker.
        self.on_taken_over: Callable[[str], None] | None = None
        limits = services.limits
        # A drive is looked after once it outlives the first interval: most end
        # sooner, and pay for neither a task nor a timer of their own.
        self._keepers: DelayedCalls[ActiveRun] = DelayedCalls(
            min(limits.cancel_poll, limits.lease_ttl / 3), self._start_keeper
        )

    async def drive(
        self,
        run_id: str,
        *,
        workflow: Workflow | None = None,
        force: bool = False,
        lease: Lease | None = None,
        created: RunState | None = None,
        ledger: Sequence[StepRecord] = (),
        answer: Answer | None = None,
        reopen: bool = False,
        creation: Creation | None = None,
    ) -> RunState:
        """Drive ``run_id`` under a lease (taken here unless given), answering ``answer``
        first (or, with ``reopen``, opening the ended run again for a retry); the run's
        state is loaded once and its ledger read once. With ``creation`` the run
        ``created`` is not written yet: the drive's first commit writes it."""
        if lease is None:
            lease = await self.acquire(run_id)
        active = self._active.begin(run_id, lease, asyncio.current_task())
        driver: RunDriver | None = None
        loaded: RunState | None = None
        self._keepers.add(active)
        try:
            chain = self._services.chain
            if created is not None:
                # The first lease ever taken on the run we just created: nobody else
                # can have changed it, so there is nothing to read back (its ledger is
                # what it was created with).
                state, ended = created, False
            else:
                state = await self._services.store.load_run(run_id)
                ended = state.status.terminal
                if ended and answer is None and not reopen:
                    return state
                ledger = await self._services.store.ledger(run_id)
                # Refuse a ledger that does not end where its head says (its
                # completed nodes would run again), or is keyed with a key we lack.
                last = ledger[-1].record_hash if ledger else ""
                chain = continue_chain(chain, state, len(ledger), last)
            loaded = state
            wf = await self._services.definitions.for_run(state, workflow, force, ledger)
            driver = active.driver = RunDriver(
                self._services,
                self._follow_on,
                active,
                state,
                wf,
                ledger,
                fresh=created is not None,
                chain=chain,
                creation=creation,
            )
            if reopen:
                # Open the ended run again (retry): its failed and skipped nodes run again.
                await driver.journal.commit(reopen_batch(driver.journal))
                ended = False  # it may end again, and settle again
            early = await driver.answer(answer) if answer is not None else None
            result: RunState = early if early is not None else await self._run_call(state)
        except LeaseLost:
            # Another process took the lease (a cancel that could not wait): report
            # how it left the run, if it ended it.
            if self.on_taken_over is not None:
                self.on_taken_over(run_id)
            loaded = state = await self._services.store.load_run(run_id)
            if not state.status.terminal:
                raise
            return state  # ended elsewhere: its secrets go with this drive's record
        finally:
            self._keepers.discard(active)
            if active.keeper is not None:
                active.keeper.cancel()
            released = driver is not None and driver.journal.released
            self._active.end(active, run_ended=loaded is not None and loaded.status.terminal)
            if not released:
                with contextlib.suppress(Exception):
                    await self._services.leases.release(run_id, lease.token)
        if result.status.terminal and not ended:
            assert driver is not None  # a drive that changed the run had a driver
            await self._follow_on.settle(result, driver.handoffs, driver.wf)
        if result.status is RunStatus.WAITING:
            return await self._take_queued(result)
        return result

    async def _take_queued(self, state: RunState) -> RunState:
        """Answer the waiting run from an event queued for it: one emitted just as the drive
        stopped, when ``emit`` found the lease still held. Unless another process drives
        the run by now (it then takes the event itself)."""
        answer = await queued_answer(self._services.store, state)
        if answer is None:
            return state
        try:
            return await self.drive(state.run_id, answer=answer)
        except (LeaseHeld, InvalidAnswer):
            return state

    async def acquire(self, run_id: str) -> Lease:
        """Take the lease to drive ``run_id``.

        Raises:
            LeaseHeld: another live process drives the run, or this engine does.
        """
        self._active.refuse_second(run_id)
        return await self._services.leases.acquire(run_id)

    async def acquire_patiently(self, run_id: str) -> Lease:
        """:meth:`acquire`, waiting up to ``answer_patience`` seconds for another process
        that holds the run — an answer arriving while another is being recorded (two
        approvers at once) waits its turn instead of failing.

        Raises:
            LeaseHeld: the run is still held after that, or this engine drives it.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._services.limits.answer_patience
        while True:
            self._active.refuse_second(run_id)
            try:
                return await self._services.leases.acquire(run_id)
            except LeaseHeld:
                if loop.time() >= deadline:
                    raise
            await asyncio.sleep(0.05)

    def _start_keeper(self, active: ActiveRun) -> None:
        active.keeper = asyncio.ensure_future(self._keep(active))

    async def _keep(self, active: ActiveRun) -> None:
        """While a drive lasts: renew its lease every third of its life, and look for a
        cancel request from another process every ``cancel_poll`` seconds."""
        services = self._services
        limits = services.limits
        key = cancel_request_key(active.run_id)
        loop = asyncio.get_running_loop()
        renew_at = loop.time() + limits.lease_ttl / 3
        while True:
            for event in await services.store.pending_events(key):
                reason = event.payload.get("reason") if isinstance(event.payload, dict) else None
                active.request_stop(
                    Stop(StopKind.CANCEL, str(reason or "cancelled"), event.event_id)
                )
                return
            if loop.time() >= renew_at:
                if not await services.leases.renew(active.run_id, active.lease.token):
                    active.request_stop(Stop(StopKind.LOST))
                    return
                renew_at = loop.time() + limits.lease_ttl / 3
            await asyncio.sleep(min(limits.cancel_poll, max(0.0, renew_at - loop.time())))

    async def _drive_terminal(self, state: RunState) -> RunState:
        active = self._active.get(state.run_id)
        assert active is not None and active.driver is not None  # set by _drive
        return await active.driver.drive()
